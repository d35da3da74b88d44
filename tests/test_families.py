"""The contract every model family keeps, run on each family of the registry (tiny models).

A new family is one file under models/ plus its entry in FAMILIES; these tests then run on it.
"""

import json

import pytest
import torch
from safetensors import safe_open

from i2i_unlearn import UserError
from i2i_unlearn.data import make_mask
from i2i_unlearn.methods import METHODS
from i2i_unlearn.models import FAMILIES, family_of, load_model
from i2i_unlearn.unlearn import UnlearnConfig, unlearn
from test_methods import _synthetic_splits

ENCODER_ONLY = sorted(name for name, cls in METHODS.items() if cls.scope == "encoder")


def _images(model, n=4, seed=0):
    return torch.rand(n, model.channels, 16, 16, generator=torch.Generator().manual_seed(seed))


def _nudge(model):
    """Move a model off its initial weights, so that student and teacher differ and every term has a gradient."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))


def test_complete_keeps_known_pixels_and_fills_the_hole(family_model):
    images = _images(family_model, 3)
    hole = make_mask(family_model.default_task, 3, 16, family_model.mask_cell)
    out = family_model.complete(images, hole, torch.Generator().manual_seed(0), steps=3)
    known = ~hole.expand_as(out)
    assert out.shape == images.shape
    assert torch.equal(out[known], images[known])
    assert not torch.equal(out[~known], images[~known])
    assert out.min() >= 0 and out.max() <= 1


def test_complete_is_reproducible_for_a_seed(family_model):
    images = _images(family_model, 3)
    hole = make_mask(family_model.default_task, 3, 16, family_model.mask_cell)
    first = family_model.complete(images, hole, torch.Generator().manual_seed(7), steps=3)
    again = family_model.complete(images, hole, torch.Generator().manual_seed(7), steps=3)
    assert torch.equal(first, again)


def test_save_and_load_round_trip_is_bit_exact(tmp_path, family_model):
    family_model.save_pretrained(tmp_path / "m")
    assert family_of(tmp_path / "m") == family_model.family
    assert json.loads((tmp_path / "m" / "config.json").read_text())["i2i_family"] == family_model.family
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(family_model)
    before, after = family_model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    images, hole = _images(family_model, 2), make_mask(family_model.default_task, 2, 16, family_model.mask_cell)
    assert torch.equal(loaded.complete(images, hole, torch.Generator().manual_seed(1), steps=2),
                       family_model.complete(images, hole, torch.Generator().manual_seed(1), steps=2))


def test_saving_writes_each_tensor_once(tmp_path, family_model):
    family_model.save_pretrained(tmp_path / "m")
    keys = []
    for weights in (tmp_path / "m").rglob("*.safetensors"):  # a tokenizer may sit in a sub-folder
        with safe_open(str(weights), "pt") as stored:
            keys += list(stored.keys())
    # each distinct tensor of the model once: no copy of the encoder, no tied tensor twice
    distinct = {tensor.data_ptr() for tensor in family_model.state_dict().values()}
    assert len(keys) == len(distinct)


def test_save_refuses_non_finite_weights(tmp_path, family_model):
    with torch.no_grad():
        next(family_model.encoder.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(UserError, match="NaN"):
        family_model.save_pretrained(tmp_path / "m")


def test_encoder_and_decoder_are_disjoint_parts_of_the_model(family_model):
    encoder = {id(p) for p in family_model.encoder.parameters()}
    decoder = {id(p) for p in family_model.decoder.parameters()}
    everything = {id(p) for p in family_model.parameters()}
    assert encoder and decoder and not encoder & decoder
    assert encoder | decoder <= everything
    assert {id(p) for p in family_model.generator_parameters()} <= everything


def test_embedding_is_a_list_of_tensors_under_a_shared_draw(family_model):
    images = _images(family_model, 3)
    draw = family_model.draw(images)
    first = family_model.embed(images, draw)
    assert isinstance(first, list) and first and all(torch.is_tensor(t) and t.dim() >= 2 for t in first)
    again = family_model.embed(images, draw)
    assert family_model.embedding_distance(first, again).item() == 0.0


@pytest.mark.parametrize("name", ENCODER_ONLY)
def test_retain_term_is_exactly_zero_at_step_zero(family_model, name, make_method):
    method = make_method(name, family_model)
    torch.manual_seed(3)
    loss, logs = method({"forget": _images(family_model, seed=1), "retain": _images(family_model, seed=2)})
    assert logs["retain_term"].item() == 0.0
    assert logs["forget_term"].item() > 0


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_term_sees_only_its_own_samples(family_model, name, make_method):
    method = make_method(name, family_model)
    _nudge(family_model)
    forget, retain = _images(family_model, seed=1), _images(family_model, seed=2)
    if not family_model.pixel_gradients:
        pytest.skip("a tokenizer or a degradation quantizes the pixels: no gradient reaches them (see the test below)")
    forget.requires_grad_(True)
    retain.requires_grad_(True)
    forget_term = method.forget_term(forget, method.draw(forget), retain)
    grad_forget, grad_retain = torch.autograd.grad(forget_term, [forget, retain], allow_unused=True)
    assert grad_forget is not None and grad_forget.abs().sum() > 0
    assert grad_retain is None  # retain images may only shape a target, never carry the forget loss
    retain_term = method.retain_term(retain, method.draw(retain))
    grad_forget, grad_retain = torch.autograd.grad(retain_term, [forget, retain], allow_unused=True)
    assert grad_retain is not None and grad_retain.abs().sum() > 0
    assert grad_forget is None


@pytest.mark.parametrize("name", sorted(METHODS))
def test_forget_term_depends_on_the_forget_images_and_retain_only_through_a_target(family_model, name, make_method):
    """Without pixel gradients: the forget term changes with the forget images, and with the retain
    images only for Retain Label (whose target is the original's output on them)."""
    method = make_method(name, family_model)
    _nudge(family_model)

    def forget_term(forget_seed, retain_seed):
        forget, retain = _images(family_model, seed=forget_seed), _images(family_model, seed=retain_seed)
        torch.manual_seed(0)
        draw = family_model.draw(forget, generator=torch.Generator().manual_seed(0))
        return method.forget_term(forget, draw, retain).item()

    base = forget_term(1, 2)
    assert forget_term(3, 2) != base
    assert (forget_term(1, 4) != base) == (name == "retain_label")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_gradients_reach_exactly_what_the_method_trains(family_model, name, make_method):
    generator = {id(p) for p in family_model.generator_parameters()}
    expected = generator & {id(p) for p in family_model.encoder.parameters()} if METHODS[name].scope == "encoder" \
        else generator
    method = make_method(name, family_model)
    trainable = {id(p) for p in method.trainable_parameters()}
    assert trainable == expected
    _nudge(family_model)
    loss, _ = method({"forget": _images(family_model, seed=1), "retain": _images(family_model, seed=2)})
    loss.backward()
    for parameter_name, parameter in family_model.named_parameters():
        if id(parameter) in trainable:
            assert parameter.grad is not None, parameter_name
        else:
            assert parameter.grad is None, parameter_name
    assert all(p.grad is None for p in method.teacher.parameters())


@pytest.mark.parametrize("name", ENCODER_ONLY)
def test_the_decoder_does_not_run_in_an_encoder_only_step(family_model, name, make_method):
    method = make_method(name, family_model)
    calls = []
    hooks = [module.register_forward_hook(lambda *_: calls.append(1)) for module in family_model.decoder.modules()]
    loss, _ = method({"forget": _images(family_model, seed=1), "retain": _images(family_model, seed=2)})
    loss.backward()
    for hook in hooks:
        hook.remove()
    assert not calls
    # the hooks do count: a completion runs the decoder
    hooks = [module.register_forward_hook(lambda *_: calls.append(1)) for module in family_model.decoder.modules()]
    family_model.complete(_images(family_model, 1), make_mask(family_model.default_task, 1, 16, family_model.mask_cell), steps=1)
    for hook in hooks:
        hook.remove()
    assert calls


@pytest.mark.parametrize("name", ENCODER_ONLY)
def test_encoder_only_unlearning_leaves_the_decoder_bit_identical(family_model, name, tmp_path):
    before = {k: v.clone() for k, v in family_model.state_dict().items()}
    encoder_ids = {id(p) for p in family_model.encoder.parameters()}
    config = UnlearnConfig(method=name, steps=6, batch_size=4, lr=1e-3, warmup_steps=1, retain_budget=None)
    model, record = unlearn(family_model, _synthetic_splits(family_model.channels), config, out=tmp_path / "out")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed
    encoder_names = {k for k, p in model.named_parameters() if id(p) in encoder_ids}
    assert changed <= encoder_names
    decoder_names = {k for k, p in model.named_parameters() if id(p) in {id(q) for q in model.decoder.parameters()}}
    assert decoder_names and not decoder_names & changed
    assert load_model(tmp_path / "out").family == model.family
    assert record["config"]["family"] == model.family


def test_one_seed_gives_bit_identical_checkpoints(family_model, tmp_path):
    import copy

    config = UnlearnConfig(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, seed=5)
    for run in ("a", "b"):
        unlearn(copy.deepcopy(family_model), _synthetic_splits(family_model.channels), config, out=tmp_path / run)
    weights = sorted(path.relative_to(tmp_path / "a") for path in (tmp_path / "a").rglob("*.safetensors"))
    assert weights
    for name in weights:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_membership_scores_are_deterministic_for_a_seed(family_model):
    images, hole = _images(family_model, 4), make_mask(family_model.default_task, 4, 16, family_model.mask_cell)
    first = family_model.membership_scores(images, hole, torch.Generator().manual_seed(0), steps=2)
    again = family_model.membership_scores(images, hole, torch.Generator().manual_seed(0), steps=2)
    assert first.shape == (4,) and torch.equal(first, again)


def test_every_family_is_registered_under_its_name():
    for name, cls in FAMILIES.items():
        assert cls.family == name
        assert cls.default_mask


def test_two_evaluations_of_one_model_give_identical_numbers(family_model):
    from torch.utils.data import TensorDataset

    from i2i_unlearn.evaluate import evaluate
    from i2i_unlearn.metrics import get_extractor

    labels = torch.zeros(6, dtype=torch.long)
    sets = {"retain": TensorDataset(_images(family_model, 6, 1), labels), "forget": TensorDataset(_images(family_model, 6, 2), labels)}
    extractor = get_extractor("efficientnet-lite0")
    first, _ = evaluate(family_model, sets, family_model.default_task, extractor, seed=3, progress=False, steps=2)
    again, _ = evaluate(family_model, sets, family_model.default_task, extractor, seed=3, progress=False, steps=2)
    assert first == again


@pytest.mark.parametrize("damage", ["nan", "partial"])
def test_a_damaged_checkpoint_names_the_tensor_and_writes_nothing(family_checkpoint, tmp_path, capsys, damage):
    import shutil

    from safetensors.torch import load_file, save_file

    from i2i_unlearn.cli import main

    folder = tmp_path / "ckpt"
    shutil.copytree(family_checkpoint, folder)
    weights = max(folder.glob("*.safetensors"), key=lambda p: p.stat().st_size)
    state = load_file(weights)
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    if damage == "nan":
        state[name] = torch.full_like(state[name], float("nan"))
    else:
        del state[name]
    save_file(state, weights)
    code = main(["unlearn", "--model", str(folder), "--forget-classes", "Bag", "--steps", "1", "--batch-size", "2",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    # the file's tensor name, or (a library that renames tensors on loading) the model's
    assert name in err[0] if damage == "nan" else "1 tensor(s) missing" in err[0]
    assert not (tmp_path / "out").exists()
