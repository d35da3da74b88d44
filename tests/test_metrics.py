"""Metrics agree with independent computations; extractors load local weights or say what is missing."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from i2i_unlearn.data import make_splits, subset_per_class
from i2i_unlearn.errors import UserError
from i2i_unlearn.data import membership_sets
from i2i_unlearn.evaluate import evaluate, feature_key
from i2i_unlearn.metrics import frechet_distance, get_extractor, inception_score
from i2i_unlearn.metrics.classifier import Classifier, ClassifierConfig, train_classifier
from i2i_unlearn.metrics.kid import kernel_inception_distance
from i2i_unlearn.metrics.membership import roc_auc
from i2i_unlearn.metrics.ssim import ssim


def features(seed, n=60, dim=12, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator)
    return torch.randn(n, dim, generator=generator) @ mixing + shift


# The metrics are torchmetrics' objects; these tests check that we call them as the definitions say,
# against the definitions written out here with numpy and scipy.

def test_fid_matches_scipy_sqrtm():
    real, fake = features(0), features(1, shift=0.7)
    x, y = real.double().numpy(), fake.double().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov_x @ cov_y).real
    expected = ((mu_x - mu_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * root)
    assert frechet_distance(real, fake) == pytest.approx(expected, rel=1e-3)
    assert frechet_distance(real, real) == pytest.approx(0.0, abs=1e-6)


def _mmd(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3."""
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    k_xx, k_yy = kernel(x, x), kernel(y, y)
    return ((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1)) + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
            - 2 * kernel(x, y).mean())


def test_kid_is_the_unbiased_polynomial_mmd():
    real, fake = features(2, n=40), features(3, n=40, shift=0.3)
    value, spread = kernel_inception_distance(real, fake)
    assert value == pytest.approx(_mmd(real.double().numpy(), fake.double().numpy()), rel=1e-6)
    assert spread == 0.0  # both sets fit in one subset: one exact value
    big_real, big_fake = features(4, n=300), features(5, n=300, shift=0.3)
    mean, std = kernel_inception_distance(big_real, big_fake, subset_size=100)
    assert mean > 0 and std > 0
    assert (mean, std) == kernel_inception_distance(big_real, big_fake, subset_size=100)  # seeded subsets
    whole = _mmd(big_real.double().numpy(), big_fake.double().numpy())
    assert mean == pytest.approx(whole, abs=3 * std)  # subsets estimate the same quantity


def test_inception_score_is_exp_mean_kl():
    logits = (features(6, n=50, dim=10) * 2).double().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    expected = np.exp((p * (np.log(p) - np.log(p.mean(0, keepdims=True)))).sum(1).mean())
    assert inception_score(torch.from_numpy(logits)) == pytest.approx(expected, rel=1e-6)
    assert inception_score(torch.zeros(20, 10)) == pytest.approx(1.0)


def test_ssim_follows_wang_et_al():
    torch.manual_seed(0)
    truth = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    noisy = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1)
    # Gaussian window 11, sigma 1.5, reflection padding, the map averaged over pixels and channels
    line = np.exp(-(np.arange(11) - 5.0) ** 2 / (2 * 1.5 ** 2))
    window = torch.from_numpy(np.outer(line, line) / line.sum() ** 2).expand(3, 1, 11, 11)
    blur = lambda x: torch.nn.functional.conv2d(torch.nn.functional.pad(x, (5,) * 4, mode="reflect"),  # noqa: E731
                                                window, groups=3)
    mu_a, mu_b = blur(noisy), blur(truth)
    var_a, var_b = blur(noisy * noisy) - mu_a ** 2, blur(truth * truth) - mu_b ** 2
    cov = blur(noisy * truth) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    assert torch.allclose(ssim(noisy, truth).double(), index.mean(dim=(1, 2, 3)), atol=1e-4)
    assert torch.allclose(ssim(truth, truth), torch.ones(3), atol=1e-6)
    with pytest.raises(ValueError, match="larger"):
        ssim(truth[..., :4, :4], truth[..., :4, :4])


def test_roc_auc_counts_pairs_and_ties_half():
    # pairs (positive, negative) ranked right: 3 > 1, 3 > 2, 2 = 2 (half), 2 > 1 -> 3.5 of 4
    assert roc_auc(torch.tensor([3.0, 2.0]), torch.tensor([1.0, 2.0])) == pytest.approx(3.5 / 4)
    assert roc_auc(torch.ones(5) * 2, torch.ones(5)) == 1.0
    assert roc_auc(torch.ones(5), torch.ones(5) * 2) == 0.0
    assert roc_auc(torch.ones(4), torch.ones(6)) == 0.5


def test_membership_sets_are_forget_classes_only():
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Trouser", "Bag"])
    members, non_members = membership_sets(splits, per_class=20, seed=0)
    train, test = members.dataset, non_members.dataset
    assert train is splits.forget.dataset and test is splits.retain_test.dataset
    assert set(members.indices) <= set(splits.forget.indices)
    names = lambda subset: [subset.dataset.class_names[subset.dataset.labels[i]] for i in subset.indices]  # noqa
    assert sorted(names(members)) == sorted(names(non_members)) == ["Bag"] * 20 + ["Trouser"] * 20


def test_unknown_extractor_and_missing_files_are_one_line_errors(tmp_path):
    for spec, words in [("vgg", "choose from"), ("inception-v3:" + str(tmp_path / "none.pth"), "pt_inception"),
                        ("clip", "hf download"), ("clip:" + str(tmp_path), "config.json"),
                        ("classifier:" + str(tmp_path), "train-classifier")]:
        with pytest.raises(UserError) as error:
            get_extractor(spec)
        assert words in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(UserError, match="train-classifier"):
        get_extractor("classifier", dataset="emoji")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A CLIP model of the right architecture with random weights, saved as a Hugging Face folder."""
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("clip")
    config = CLIPConfig(text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                     "num_attention_heads": 2},
                        vision_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
                        projection_dim=8)
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    return folder


def test_clip_extractor_loads_a_local_folder(tiny_clip, tmp_path):
    extractor = get_extractor(f"clip:{tiny_clip}")
    out = extractor(torch.rand(3, 1, 28, 28))
    assert out.shape == (3, 8) and extractor.dim == 8 and torch.isfinite(out).all()
    assert torch.allclose(extractor.mean, torch.full((1, 3, 1, 1), 0.5))
    (tmp_path / "open_clip_pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(UserError, match="open_clip"):
        get_extractor(f"clip:{tmp_path}")


@pytest.fixture(scope="module")
def small_classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("classifier") / "fm"
    record = train_classifier(ClassifierConfig(image_size=16, width=8, steps=150, batch_size=64), folder)
    return folder, record


def test_classifier_trains_saves_and_maps_classes(small_classifier, tmp_path):
    folder, record = small_classifier
    assert record["test_accuracy"] > 0.6  # 10 classes: chance is 0.1
    classifier = Classifier(folder)
    assert classifier(torch.rand(2, 3, 32, 32)).shape == (2, classifier.dim)
    assert classifier.label_map(["Bag", "Cat", "trouser"]).tolist() == [8, -1, 1]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((folder / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(UserError, match="corrupt"):
        Classifier(broken)


def test_evaluation_reports_every_metric_and_caches_real_features(tiny_checkpoint, small_classifier, tmp_path,
                                                                   monkeypatch):
    from i2i_unlearn.models import load_model

    monkeypatch.setenv("I2I_UNLEARN_CACHE", str(tmp_path / "cache"))
    model = load_model(tiny_checkpoint)
    splits = make_splits("fashion-mnist", 16, 1, forget_classes=["Bag"])
    sets = {"retain": subset_per_class(splits.retain_test, 3), "forget": subset_per_class(splits.forget_test, 6)}
    classifier = Classifier(small_classifier[0])
    extractor = get_extractor(f"classifier:{small_classifier[0]}")
    calls = []
    original_forward = extractor.forward
    monkeypatch.setattr(extractor, "forward", lambda images: calls.append(len(images)) or original_forward(images))
    first, _ = evaluate(model, sets, extractor=extractor, batch_size=10, classifier=classifier, progress=False)
    assert sum(calls) == 2 * (27 + 6)  # completions and real images
    for values in first.values():
        assert {"hole_mse", "psnr", "ssim", "fid", "kid", "is", "cosine", "class_accuracy"} <= set(values)
        assert 0 <= values["class_accuracy"] <= 1 and -1 <= values["ssim"] <= 1
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2
    calls.clear()
    second, _ = evaluate(model, sets, extractor=extractor, batch_size=10, classifier=classifier, progress=False)
    assert sum(calls) == 27 + 6  # real-image features came from the disk cache
    assert second["forget"]["fid"] == pytest.approx(first["forget"]["fid"], rel=1e-5)
    other = subset_per_class(splits.forget_test, 6, seed=1)
    assert feature_key(other, extractor) != feature_key(sets["forget"], extractor)
