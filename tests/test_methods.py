"""The paper's loss: which samples each term sees, which parameters it trains, what it leaves alone."""

import pytest
import torch
from torch.utils.data import Subset, TensorDataset

from i2i_unlearn.data import Splits, make_splits
from i2i_unlearn.models import load_model
from i2i_unlearn.methods import METHODS, create_method, noise_like
from i2i_unlearn.unlearn import UnlearnConfig, unlearn


def _images(n=4, seed=0):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_term_sees_only_its_own_samples(tiny_model, name):
    method = create_method(name, tiny_model, mask="random:0.5")
    with torch.no_grad():  # move the student off the original so that every term has a gradient
        for parameter in tiny_model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    forget = _images(seed=1).requires_grad_(True)
    retain = _images(seed=2).requires_grad_(True)
    forget_term = method.forget_term(forget, retain)
    grad_forget, grad_retain = torch.autograd.grad(forget_term, [forget, retain], allow_unused=True)
    assert grad_forget is not None and grad_forget.abs().sum() > 0
    assert grad_retain is None  # retain images may only shape a target, never carry the forget loss
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
    assert method.forget_term(_images(), _images(seed=9)).item() > 0


@pytest.mark.parametrize("name", sorted(METHODS))
def test_gradients_reach_what_the_method_trains(tiny_model, name):
    method = create_method(name, tiny_model)
    trainable = method.trainable_parameters()
    loss, _ = method({"forget": _images(seed=1), "retain": _images(seed=2)})
    if name in ("i2i", "random_encoder"):
        assert loss.item() > 0
    loss.backward()
    encoder_ids = {id(p) for p in tiny_model.encoder.parameters()}
    trainable_ids = {id(p) for p in trainable}
    if method.scope == "encoder":
        assert trainable_ids and trainable_ids <= encoder_ids
    else:
        assert {id(p) for p in tiny_model.hf.decoder.parameters() if p.requires_grad} <= trainable_ids
    for parameter_name, parameter in tiny_model.named_parameters():
        if id(parameter) in trainable_ids:
            assert parameter.grad is not None, parameter_name
        else:
            assert parameter.grad is None, parameter_name
    assert all(p.grad is None for p in method.teacher.parameters())


@pytest.mark.parametrize("kind", ["normal", "uniform", "constant"])
def test_noise_stays_in_pixel_range(kind):
    images = _images(8)
    noise = noise_like(images, kind)
    assert noise.shape == images.shape and noise.min() >= 0 and noise.max() <= 1
    assert not torch.equal(noise, noise_like(images, kind)) or kind == "constant"


def _synthetic_splits():
    forget = TensorDataset(_images(16, 1), torch.zeros(16, dtype=torch.long))
    retain = TensorDataset(_images(16, 2), torch.ones(16, dtype=torch.long))
    return Splits(forget, retain, forget, retain, ["f"], {"dataset": "synthetic"})


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_short_run_moves_the_forget_term_the_intended_way(name):
    # The bundled model, because a barely trained one completes every image alike and Retain
    # Label's target would then already be met.
    model = load_model("bundled")
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Trouser"], retain_limit=64)
    splits.forget = Subset(splits.forget.dataset, splits.forget.indices[:64])
    forget = torch.stack([splits.forget[i][0] for i in range(16)])
    retain = torch.stack([splits.retain[i][0] for i in range(16)])
    # A probe built on the original model measures the forget term with fixed masks and noise.
    probe = create_method(name, model, mask="center", noise="constant")

    def forget_term():
        torch.manual_seed(0)
        with torch.no_grad():
            return probe.forget_term(forget, retain).item()

    before = forget_term()
    config = UnlearnConfig(method=name, steps=30, batch_size=16, lr=1e-3, warmup_steps=2, mask="center",
                           noise="constant", forget_alpha=1.0, retain_alpha=0.0)
    unlearn(model, splits, config)  # changes the model in place
    # Every method's forget term is a loss it minimises (Max Loss: minus the task loss); the
    # retain term is off here so that the direction is the forget term's alone.
    assert forget_term() < before


def test_unlearning_changes_the_encoder_and_nothing_else(tiny_model, tmp_path):
    splits = _synthetic_splits()
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
