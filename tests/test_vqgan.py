"""The VQ-GAN family: MAGE masking, the tokenizer kept frozen, MaskGIT decoding, the token
cross-entropy of the baselines, an end-to-end tiny run, and its bad inputs."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from i2i_unlearn import UserError
from i2i_unlearn.cli import main
from i2i_unlearn.data import make_mask
from i2i_unlearn.data.masks import mage_rate
from i2i_unlearn.methods import METHODS
from i2i_unlearn.models import VQGANModel, create_model, load_model
from i2i_unlearn.unlearn import UnlearnConfig, unlearn
from conftest import calibrated_request
from test_methods import _synthetic_splits


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return create_model("vqgan", image_size=16, channels=1, **VQGANModel.tiny_settings())


def _images(n=3, seed=0):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_mage_rates_follow_the_truncated_normal():
    generator = torch.Generator().manual_seed(0)
    rates = torch.tensor([mage_rate(generator) for _ in range(4000)])
    assert rates.min() >= 0.5 and rates.max() <= 1.0
    # mean of N(0.55, 0.25) truncated to [0.5, 1]: 0.55 + 0.25 * (phi(-0.2) - phi(1.8)) / (Phi(1.8) - Phi(-0.2))
    normal = torch.distributions.Normal(0.0, 1.0)
    a, b = torch.tensor(-0.2), torch.tensor(1.8)
    expected = 0.55 + 0.25 * (normal.log_prob(a).exp() - normal.log_prob(b).exp()) / (normal.cdf(b) - normal.cdf(a))
    assert abs(rates.mean() - expected) < 0.01


def test_a_mage_batch_hides_one_share_of_tokens_per_image(tiny):
    draw = tiny.draw(_images(4), generator=torch.Generator().manual_seed(1))
    counts = draw.values["token_mask"].sum(1)
    assert (counts == counts[0]).all() and counts[0] >= 8  # at least half of the 4x4 token grid


def test_encoder_on_kept_tokens_equals_encoder_with_attention_masking(tiny):
    tokens = torch.randint(0, 32, (3, 16))
    keep = torch.zeros(3, 16, dtype=torch.bool)
    for row in range(3):
        keep[row, torch.randperm(16)[:6]] = True
    gathered = tiny.encoder(tokens, keep)  # equal counts: the blocks see the kept tokens only
    uneven = keep.clone()
    uneven[0, (~keep[0]).nonzero()[0]] = True  # one more kept token in the first image: the masked path
    masked_path = tiny.encoder(torch.cat([tokens, tokens[:1]]), torch.cat([keep, uneven[:1]]))[:3]
    assert torch.allclose(gathered, masked_path, atol=1e-5)
    assert gathered[:, 1:][~keep].abs().max() == 0  # masked tokens leave nothing in the embedding


def test_decoder_has_its_own_output_table(tiny):
    encoder = {p.data_ptr() for p in tiny.encoder.parameters()}
    assert tiny.decoder.head.weight.data_ptr() not in encoder
    assert tiny.encoder.token_embedding.weight.data_ptr() not in {p.data_ptr() for p in tiny.decoder.parameters()}


def test_no_method_can_train_the_tokenizer(tiny, make_method):
    tokenizer = {id(p) for p in tiny.tokenizer.parameters()}
    for name in METHODS:
        method = make_method(name, tiny)
        assert not tokenizer & {id(p) for p in method.trainable_parameters()}
        assert not any(p.requires_grad for p in tiny.tokenizer.parameters())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_tokenizer_is_bit_identical_after_every_method(tiny, name, tmp_path):
    before = {key: value.clone() for key, value in tiny.state_dict().items()}
    config = UnlearnConfig(method=name, steps=3, batch_size=4, lr=1e-2, retain_budget=None)
    splits, config = calibrated_request(name, tiny, _synthetic_splits(), config, tmp_path)
    model, _ = unlearn(tiny, splits, config)
    after = model.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before if key.startswith("tokenizer."))
    assert not all(torch.equal(before[key], after[key]) for key in before if key.startswith("transformer."))


def test_known_tokens_are_never_resampled(tiny):
    images = _images()
    hole = make_mask("center", 3, 16, tiny.mask_cell)
    known = ~tiny.token_mask(hole)
    for steps in (1, 2, 50):  # 50: more iterations than hidden tokens
        tokens = tiny.decode_tokens(images, hole, torch.Generator().manual_seed(0), steps)
        assert torch.equal(tokens[known], tiny.tokenize(images, hole)[known])
        assert 0 <= tokens.min() and tokens.max() < 32


def test_what_is_in_the_hole_never_reaches_the_completion(tiny):
    images = _images()
    hole = make_mask("center", 3, 16, tiny.mask_cell)
    other = torch.where(hole, torch.rand_like(images), images)  # same context, other hole content
    first = tiny.complete(images, hole, torch.Generator().manual_seed(0), steps=2)
    again = tiny.complete(other, hole, torch.Generator().manual_seed(0), steps=2)
    assert torch.equal(first[hole.expand_as(first)], again[hole.expand_as(again)])
    draw = tiny.draw(images, "center")
    assert torch.equal(tiny.predict(images, draw), tiny.predict(other, draw))


def test_retain_label_target_is_a_soft_cross_entropy(tiny):
    images = _images()
    draw = tiny.draw(images, "center")
    logits = tiny.predict(images, draw)
    other = torch.randn_like(logits)
    loss = tiny.prediction_loss(logits, other, draw)
    mask = draw.values["token_mask"]
    expected = -(other.softmax(-1) * logits.log_softmax(-1)).sum(-1)[mask].view(3, -1).mean(1).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert tiny.prediction_loss(logits, logits.detach(), draw) < loss


def test_noisy_label_targets_uniform_codebook_indices(tiny):
    images = _images(8)
    draw = tiny.draw(images, "center")
    torch.manual_seed(0)
    noisy = tiny.noise_task_loss(images, draw)
    # a uniform target over K entries: the loss of uniform logits is log K
    uniform = tiny.prediction_loss(torch.zeros_like(tiny.predict(images, draw)),
                                   torch.randint(0, 32, draw.values["token_mask"].shape), draw)
    assert torch.allclose(uniform, torch.log(torch.tensor(32.0)))
    assert noisy.item() > 0


def test_missing_tokenizer_and_mismatched_pairs_are_refused(tmp_path, tiny):
    tiny.save_pretrained(tmp_path / "m")
    shutil.copytree(tmp_path / "m", tmp_path / "no-tokenizer")
    shutil.rmtree(tmp_path / "no-tokenizer" / "tokenizer")
    with pytest.raises(UserError, match="no tokenizer/ folder"):
        load_model(tmp_path / "no-tokenizer")
    other = create_model("vqgan", image_size=16, **{**VQGANModel.tiny_settings(), "codebook_size": 16})
    shutil.copytree(tmp_path / "m", tmp_path / "codebook")
    shutil.rmtree(tmp_path / "codebook" / "tokenizer")
    other.save_pretrained(tmp_path / "other")
    shutil.copytree(tmp_path / "other" / "tokenizer", tmp_path / "codebook" / "tokenizer")
    with pytest.raises(UserError, match="codebook entries"):
        load_model(tmp_path / "codebook")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "grid": 8}))
    with pytest.raises(UserError, match="token grid"):
        load_model(tmp_path / "m")


def test_cli_refuses_zero_decoding_iterations(family_checkpoint, tmp_path, capsys):
    if load_model(family_checkpoint).family != "vqgan":
        pytest.skip("VQ-GAN checkpoints only")
    code = main(["evaluate", "--model", str(family_checkpoint), "--forget-classes", "Bag",
                 "--sampling-steps", "0", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "decoding iterations" in err[0]
    assert not (tmp_path / "out").exists()


def test_tiny_end_to_end_train_unlearn_evaluate(tmp_path, capsys):
    """Train (tokenizer, then transformer) a few steps, unlearn, evaluate with 2 decoding iterations."""
    model = tmp_path / "model"
    assert main(["train", "--family", "vqgan", "--image-size", "16", "--model-config",
                 json.dumps(VQGANModel.tiny_settings()), "--steps", "5", "--tokenizer-steps", "5",
                 "--batch-size", "8", "--out", str(model)]) == 0
    record = json.loads((model / "train_record.json").read_text())
    assert record["tokenizer"]["test"]["codes_used"] >= 1
    assert main(["unlearn", "--model", str(model), "--forget-classes", "Trouser,Bag", "--steps", "3",
                 "--batch-size", "4", "--out", str(tmp_path / "unlearned")]) == 0
    assert main(["evaluate", "--model", str(tmp_path / "unlearned"), "--forget-classes", "Trouser,Bag",
                 "--eval-per-class", "2", "--sampling-steps", "2", "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["forget"]["hole_mse"] > 0 and metrics["retain"]["hole_mse"] > 0
    # a retrained transformer reuses the tokenizer of the first model, bit for bit
    assert main(["train", "--family", "vqgan", "--image-size", "16", "--model-config",
                 json.dumps({k: v for k, v in VQGANModel.tiny_settings().items() if "tokenizer" not in k}),
                 "--tokenizer", str(model), "--exclude-classes", "Trouser,Bag", "--steps", "3", "--batch-size", "8",
                 "--out", str(tmp_path / "retrained")]) == 0
    first, second = load_model(model).tokenizer.state_dict(), load_model(tmp_path / "retrained").tokenizer.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    capsys.readouterr()


def test_soft_target_equals_hard_target_for_one_hot_logits(tiny):
    images = _images()
    draw = tiny.draw(images, "center")
    logits = tiny.predict(images, draw)
    indices = torch.randint(0, 32, draw.values["token_mask"].shape)
    one_hot = F.one_hot(indices, 32).float() * 1e4
    assert torch.allclose(tiny.prediction_loss(logits, one_hot, draw), tiny.prediction_loss(logits, indices, draw),
                          atol=1e-4)
