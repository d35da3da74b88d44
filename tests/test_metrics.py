"""Metrics agree with independent computations; extractors load local weights or say what is missing."""

import json

import numpy as np
import pytest
import scipy.linalg
import torch

from i2i_unlearn.data import make_splits, subset_per_class
from i2i_unlearn.errors import UserError
from i2i_unlearn.evaluate import evaluate, feature_key, membership_sets
from i2i_unlearn.metrics import FeatureStats, frechet_distance, get_extractor, inception_score
from i2i_unlearn.metrics.classifier import Classifier, ClassifierConfig, train_classifier
from i2i_unlearn.metrics.kid import kernel_inception_distance
from i2i_unlearn.metrics.membership import roc_auc
from i2i_unlearn.metrics.ssim import ssim


class Identity(torch.nn.Module):
    def forward(self, x):
        return x


def features(seed, n=60, dim=12, shift=0.0):
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=generator)
    return torch.randn(n, dim, generator=generator) @ mixing + shift


def test_fid_matches_scipy_sqrtm():
    real, fake = features(0), features(1, shift=0.7)
    a, b = FeatureStats(12), FeatureStats(12)
    a.update(real[:25])
    a.update(real[25:])  # running sums over batches
    b.update(fake)
    x, y = real.double().numpy(), fake.double().numpy()
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(cov_x @ cov_y).real
    expected = ((mu_x - mu_y) ** 2).sum() + np.trace(cov_x + cov_y - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-3)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_matches_torchmetrics():
    from torchmetrics.image.kid import KernelInceptionDistance

    real, fake = features(2, n=40), features(3, n=40, shift=0.3)
    reference = KernelInceptionDistance(feature=Identity(), subsets=1, subset_size=40)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    value, spread = kernel_inception_distance(real, fake)
    assert value == pytest.approx(float(reference.compute()[0]), rel=1e-3)
    assert spread == 0.0
    mean, std = kernel_inception_distance(features(4, n=300), features(5, n=300, shift=0.3), subset_size=100)
    assert mean > 0 and std > 0


def test_inception_score_matches_torchmetrics():
    from torchmetrics.image.inception import InceptionScore

    logits = features(6, n=50, dim=10) * 2
    reference = InceptionScore(feature=Identity(), splits=1)
    reference.update(logits)
    assert inception_score(logits) == pytest.approx(float(reference.compute()[0]), rel=1e-3)
    assert inception_score(torch.zeros(20, 10)) == pytest.approx(1.0)


def test_ssim_matches_torchmetrics():
    from torchmetrics.image import StructuralSimilarityIndexMeasure

    torch.manual_seed(0)
    truth = torch.rand(3, 3, 32, 32)
    noisy = (truth + 0.1 * torch.randn_like(truth)).clamp(0, 1)
    reference = StructuralSimilarityIndexMeasure(data_range=1.0, reduction="none")(noisy, truth)
    assert torch.allclose(ssim(noisy, truth), reference, atol=1e-4)
    assert torch.allclose(ssim(truth, truth), torch.ones(3), atol=1e-6)


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
