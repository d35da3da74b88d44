"""The paper's loss: which samples each term sees, which parameters it trains, what it leaves alone."""

import pytest
import torch
from torch.utils.data import TensorDataset

from i2i_unlearn.data import Splits
from i2i_unlearn.methods import METHODS, create_method, noise_like
from i2i_unlearn.unlearn import UnlearnConfig, unlearn


def _images(n=4, seed=0):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_each_term_sees_only_its_own_samples(tiny_model):
    method = create_method("i2i", tiny_model, mask="random:0.5")
    with torch.no_grad():  # move the student off the teacher so that both terms have a gradient
        for parameter in tiny_model.encoder.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    forget = _images(seed=1).requires_grad_(True)
    retain = _images(seed=2).requires_grad_(True)
    forget_term = method.forget_term(forget)
    grad_forget, grad_retain = torch.autograd.grad(forget_term, [forget, retain], allow_unused=True)
    assert grad_forget is not None and grad_forget.abs().sum() > 0
    assert grad_retain is None
    retain_term = method.retain_term(retain)
    grad_forget, grad_retain = torch.autograd.grad(retain_term, [forget, retain], allow_unused=True)
    assert grad_retain is not None and grad_retain.abs().sum() > 0
    assert grad_forget is None


def test_terms_are_weighted_by_their_alphas(tiny_model):
    method = create_method("i2i", tiny_model, forget_alpha=0.3, retain_alpha=2.0)
    torch.manual_seed(5)
    loss, logs = method({"forget": _images(seed=1), "retain": _images(seed=2)})
    assert loss.item() == pytest.approx(0.3 * logs["forget_term"].item() + 2.0 * logs["retain_term"].item(),
                                        rel=1e-5)


def test_retain_term_is_zero_before_training(tiny_model):
    # Student and teacher start equal, so on retain images there is nothing to correct yet.
    method = create_method("i2i", tiny_model)
    assert method.retain_term(_images()).item() == pytest.approx(0.0, abs=1e-12)
    assert method.forget_term(_images()).item() > 0


def test_gradients_reach_the_encoder_only(tiny_model):
    method = create_method("i2i", tiny_model)
    trainable = method.trainable_parameters()
    loss, _ = method({"forget": _images(seed=1), "retain": _images(seed=2)})
    loss.backward()
    encoder_ids = {id(p) for p in tiny_model.encoder.parameters()}
    assert {id(p) for p in trainable} <= encoder_ids and trainable
    for name, parameter in tiny_model.named_parameters():
        if id(parameter) in encoder_ids and parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name
    assert all(p.grad is None for p in method.teacher.parameters())


@pytest.mark.parametrize("kind", ["normal", "uniform", "constant"])
def test_noise_stays_in_pixel_range(kind):
    images = _images(8)
    noise = noise_like(images, kind)
    assert noise.shape == images.shape and noise.min() >= 0 and noise.max() <= 1
    assert not torch.equal(noise, noise_like(images, kind)) or kind == "constant"


def test_unlearning_changes_the_encoder_and_nothing_else(tiny_model, tmp_path):
    forget = TensorDataset(_images(16, 1), torch.zeros(16, dtype=torch.long))
    retain = TensorDataset(_images(16, 2), torch.ones(16, dtype=torch.long))
    splits = Splits(forget, retain, forget, retain, ["f"], {"dataset": "synthetic"})
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    model, record = unlearn(tiny_model, splits, UnlearnConfig(steps=15, batch_size=8, lr=1e-3, warmup_steps=2),
                            out=tmp_path / "out")
    after = model.state_dict()
    encoder_keys = {"hf.vit." + k for k in model.encoder.state_dict()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= encoder_keys
    decoder = {k for k in before if k.startswith("hf.decoder.")}
    assert decoder and not decoder & changed
    assert record["history"][-1]["forget_term"] < record["history"][0]["forget_term"]
    assert (tmp_path / "out" / "model.safetensors").exists()
    assert (tmp_path / "out" / "unlearn_record.json").exists()


def test_every_method_is_registered_with_a_scope():
    for name, cls in METHODS.items():
        assert cls.name == name and cls.scope in ("encoder", "model")
