"""Speed settings: --precision bf16 and --compile give the same step (weights stay float32);
--settle stops a run once its terms have settled."""

import pytest
import torch
from torch.utils.data import TensorDataset

from i2i_unlearn.data import Splits
from i2i_unlearn.engine import settled
from i2i_unlearn.errors import UserError
from i2i_unlearn.unlearn import UnlearnConfig, unlearn


def _splits(channels=1):
    images = torch.rand(32, channels, 16, 16, generator=torch.Generator().manual_seed(0))
    forget = TensorDataset(images[:16], torch.zeros(16, dtype=torch.long))
    retain = TensorDataset(images[16:], torch.ones(16, dtype=torch.long))
    return Splits(forget, retain, forget, retain, ["f"], {"dataset": "synthetic"})


def _run(model, **settings):
    """6 steps; returns the model, its record and the dtypes the encoder's layers computed in."""
    config = UnlearnConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=0, retain_budget=None, **settings)
    seen = []
    handles = [m.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
               for m in model.encoder.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    model, record = unlearn(model, _splits(model.channels), config)
    for handle in handles:
        handle.remove()
    return model, record, set(seen)


def test_bf16_runs_the_encoder_in_bfloat16_and_keeps_float32_weights(family_model):
    reference = {k: v.clone() for k, v in family_model.state_dict().items()}
    model, record, seen = _run(family_model, precision="bf16")
    assert torch.bfloat16 in seen  # autocast was on for the step
    trained = model.state_dict()
    assert all(v.dtype == reference[k].dtype and torch.isfinite(v).all() for k, v in trained.items())
    assert any(not torch.equal(v, reference[k]) for k, v in trained.items())
    family_model.load_state_dict(reference)
    _, exact, seen = _run(family_model)
    assert torch.bfloat16 not in seen
    # the first logged losses (6 steps, from the same start) agree to bfloat16's ~3 digits
    assert record["history"][0]["loss"] == pytest.approx(exact["history"][0]["loss"], rel=0.1)


def test_compile_gives_the_eager_step(tiny_model):
    # Draws without randomness (centre hole, constant noise): compiled code draws random numbers
    # its own way, so only a draw-free step can be compared number for number.
    reference = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    _, compiled, _ = _run(tiny_model, compile=True, mask="center", noise="constant")
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    tiny_model.load_state_dict(reference)
    _, eager, _ = _run(tiny_model, mask="center", noise="constant")
    assert graphs > 0  # the step went through torch.compile
    assert compiled["history"][0]["loss"] == pytest.approx(eager["history"][0]["loss"], rel=1e-3)


def test_an_unknown_precision_is_refused_before_anything_runs():
    with pytest.raises(UserError, match="precision"):
        UnlearnConfig(precision="fp8").check()
    for tolerance in (0, 1, float("nan"), -0.1):
        with pytest.raises(UserError, match="settle"):
            UnlearnConfig(settle=tolerance).check()


def test_settled_compares_the_last_two_windows_of_every_term():
    flat = [{"forget_term": 1.0, "retain_term": 2.0}] * 10
    assert settled(flat, 0.02, ("forget_term", "retain_term"))
    assert not settled(flat[:9], 0.02, ("forget_term", "retain_term"))  # two whole windows needed
    falling = [{"forget_term": 1.0 - 0.01 * i, "retain_term": 2.0} for i in range(10)]  # 5% lower in 5 points
    assert not settled(falling, 0.02, ("forget_term", "retain_term"))
    assert settled(falling, 0.06, ("forget_term", "retain_term"))
    rising = [{"forget_term": 1.0, "retain_term": 2.0 + 0.02 * i} for i in range(10)]
    assert settled(rising, 0.02, ("forget_term",)) and not settled(rising, 0.02, ("forget_term", "retain_term"))


def test_a_settled_run_stops_early_and_says_so(tiny_model):
    config = UnlearnConfig(steps=400, batch_size=8, lr=1e-3, warmup_steps=0, retain_budget=None, settle=0.5)
    _, record = unlearn(tiny_model, _splits(), config)
    assert 100 <= record["settled_at"] == record["steps_run"] < 400  # two windows of 50 steps at least
    assert settled(record["history"], 0.5, ("forget_term", "retain_term"))
    assert not settled(record["history"][:-1], 0.5, ("forget_term", "retain_term"))  # at its first chance


def test_without_settle_a_fixed_run_takes_every_step(tiny_model):
    config = UnlearnConfig(steps=30, batch_size=8, lr=1e-3, warmup_steps=0, retain_budget=None)
    _, record = unlearn(tiny_model, _splits(), config)
    assert record["steps_run"] == 30 and "settled_at" not in record


def test_a_controlled_run_that_settles_says_so(tiny_model):
    images = torch.rand(64, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    forget = TensorDataset(images[:32], torch.zeros(32, dtype=torch.long))
    retain = TensorDataset(images[32:], torch.ones(32, dtype=torch.long))
    splits = Splits(forget, retain, forget, retain, ["f"], {"dataset": "synthetic"})
    config = UnlearnConfig(steps=400, batch_size=8, lr=1e-3, warmup_steps=0, settle=0.5, retain_budget=0.5,
                           forget_target="1000", val_images=8)  # a target no run reaches
    _, record = unlearn(tiny_model, splits, config)
    assert record["steps_run"] < 400 and record["control"]["stopped_by"] == "settled"
    assert record["settled_at"] == record["steps_run"] and "settled (--settle)" in record["control"]["message"]
    # forget and retain images are alike (uniform noise): nothing was forgotten, and the outcome says that
    assert record["control"]["outcome"] == "no_progress" and record["control"]["kept_step"] == 0
