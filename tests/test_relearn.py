"""The relearning probe: every model fine-tuned alike on a few forget images, measured along the way."""

import json

import torch

from conftest import small_attackers
from i2i_unlearn import relearn
from i2i_unlearn.cli import main
from i2i_unlearn.data import make_splits
from i2i_unlearn.models import load_model
from i2i_unlearn.relearn import RELEARNED, ProbeConfig, attacker, probe_sets, relearn_curve, steps_to_relearn


def _curve(*errors, every=15):
    return [{"step": every * i, "forget_hole_mse": error} for i, error in enumerate(errors)]


def test_steps_to_relearn_is_the_first_measured_step_within_the_factor_of_the_original():
    original = 0.04
    curve = _curve(0.2, 0.09, 0.051, 0.049, 0.03)  # 1.25 x 0.04 = 0.05
    assert steps_to_relearn(curve, original) == 45
    assert steps_to_relearn(_curve(0.2, 0.0500001, 0.06), original) is None  # never within 1.25x
    assert steps_to_relearn(_curve(0.05, 0.2), original) == 0  # at the start already
    assert steps_to_relearn(curve, original, factor=2.0) == 30
    assert RELEARNED == 1.25


def test_the_attackers_are_todays_probe_and_the_worst_case_over_three_learning_rates():
    (default,) = attacker("default")
    assert (default.images, default.steps, default.lr) == (16, 60, 1e-4)
    strong = attacker("strong", seed=3)
    assert [c.lr for c in strong] == [1e-4, 3e-4, 1e-3] and {c.steps for c in strong} == {200}
    assert {c.seed for c in strong} == {3}


def test_the_probe_is_deterministic_under_a_seed(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser"])
    config = ProbeConfig(images=4, steps=4, batch_size=4, lr=1e-3, eval_every=2, eval_images=6, seed=5)
    train, test = probe_sets(splits, config)
    first = relearn_curve(model, train, test, config)
    again = relearn_curve(model, *probe_sets(splits, config), config)
    assert first == again and len(first) == 3
    other = ProbeConfig(**{**config.__dict__, "seed": 6})
    assert probe_sets(splits, other)[0].indices != train.indices  # the seed picks the attacker's images
    assert relearn_curve(model, *probe_sets(splits, other), other) != first
    untouched = load_model(tiny_checkpoint).state_dict()
    assert all(torch.equal(untouched[key], value) for key, value in model.state_dict().items())  # it tunes a copy


def test_relearn_probe_measures_each_model_along_the_way(tiny_checkpoint, tmp_path, capsys):
    unlearned = tmp_path / "unlearned"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(unlearned), "--forget-classes", "Trouser",
                 "--retain-limit", "100", "--steps", "3", "--batch-size", "8"]) == 0
    out = tmp_path / "probe"
    assert main(["relearn-probe", "--model", str(unlearned), "--original", str(tiny_checkpoint), "--forget-classes",
                 "Trouser", "--probe-images", "4", "--steps", "6", "--eval-every", "3", "--eval-images", "6",
                 "--lr", "1e-3", "--batch-size", "4", "--out", str(out)]) == 0
    record = json.loads((out / "relearn.json").read_text())
    assert set(record["curves"]) == {"unlearned", "original"}
    for curve in record["curves"].values():
        assert [point["step"] for point in curve] == [0, 3, 6]
        assert all(point["forget_hole_mse"] > 0 for point in curve)
        assert curve[0]["forget_hole_mse"] != curve[-1]["forget_hole_mse"]  # fine-tuning moved the model
    assert len(record["data"]["probe_images"]) == 4 and record["data"]["test_images"] == 6
    assert "recovered" in capsys.readouterr().out
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "relearning probe" in (tmp_path / "r.html").read_text()


def test_relearn_probe_refuses_a_reference_of_another_family(tiny_checkpoint, tmp_path, capsys):
    assert main(["relearn-probe", "--model", str(tiny_checkpoint), "--retrained", "bundled:diffusion",
                 "--forget-classes", "Trouser", "--out", str(tmp_path / "p")]) == 2
    assert "must match --model" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_evaluate_with_the_original_probes_relearning(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(relearn, "attacker", small_attackers)
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--original", str(tiny_checkpoint), "--forget-classes",
                 "Trouser", "--eval-per-class", "2", "--classifier", "none", "--out", str(out)]) == 0
    probe = json.loads((out / "metrics.json").read_text())["relearn"]
    assert set(probe) == {"default", "strong"}
    assert probe["default"]["model"] == probe["default"]["original"]  # the same checkpoint, the same seed
    assert probe["default"]["steps_to_relearn"] == {"model": 0, "original": 0}
    assert "default attacker: model at step 0" in capsys.readouterr().out


def test_evaluate_refuses_a_relearning_probe_without_the_original(tiny_checkpoint, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tiny_checkpoint), "--forget-classes", "Trouser", "--relearn", "default",
                 "--out", str(tmp_path / "eval")]) == 2
    assert "--relearn needs --original" in capsys.readouterr().err
    assert not (tmp_path / "eval").exists()
