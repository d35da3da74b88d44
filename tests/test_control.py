"""Controllable forgetting: the validation split, the controller's decisions, and controlled runs
of every method and family (the budget is enforced by the kept model, not just recorded)."""

import copy
import html

import pytest
import torch

from i2i_unlearn.cli import main
from i2i_unlearn.control import GROW, MAX_BACKOFFS, PATIENCE, SHRINK, TARGET_FLOOR, ControlConfig, Controller
from i2i_unlearn.data import hold_out_validation, make_mask, make_splits, stack_images
from i2i_unlearn.methods import METHODS, create_method
from i2i_unlearn.metrics import hole_mse
from i2i_unlearn.report import write_report
from i2i_unlearn.unlearn import UnlearnConfig, unlearn
from conftest import calibrated_request
from test_methods import _images, _synthetic_splits


def test_validation_is_held_out_of_training_and_never_from_the_test_images():
    splits = make_splits("fashion-mnist", 16, 1, forget_classes=["Trouser"])
    reduced, forget_val, retain_val = hold_out_validation(splits, 64, seed=0)
    for full, train, val in ((splits.forget, reduced.forget, forget_val), (splits.retain, reduced.retain, retain_val)):
        assert len(val) == 64 and val.dataset is full.dataset  # training images, not test images
        assert not set(val.indices) & set(train.indices)
        assert set(val.indices) | set(train.indices) == set(full.indices)
    assert reduced.forget_test is splits.forget_test and reduced.retain_test is splits.retain_test
    assert reduced.info["validation"]["held_out_of_training"] == {"forget": 64, "retain": 64}
    assert hold_out_validation(splits, 64, seed=1)[1].indices != forget_val.indices


def test_a_forget_list_is_trained_on_whole_and_is_its_own_validation(tmp_path):
    probe = make_splits("fashion-mnist", 16, 1, forget_classes=["Bag"])
    listed = [probe.forget.dataset.ids[i] for i in probe.forget.indices[:10]]
    (tmp_path / "forget.txt").write_text("\n".join(listed))
    splits = make_splits("fashion-mnist", 16, 1, forget_list=str(tmp_path / "forget.txt"))
    reduced, forget_val, _ = hold_out_validation(splits, 64, seed=0)
    assert reduced.forget.indices == splits.forget.indices  # every listed image is trained on
    assert sorted(forget_val.indices) == sorted(splits.forget.indices)


def _controller(model, target="noise", budget=0.05, check_every=2):
    method = create_method("i2i", model)
    parameters = method.trainable_parameters()
    config = ControlConfig(retain_budget=budget, forget_target=target, check_every=check_every, val_images=8)
    return Controller(method, _images(8, 1), _images(8, 2), config, parameters), method, parameters


def _scripted(controller, measurements):
    """Feed the controller made-up measurements (forget error, retain error[, forget embedding
    distance]), one per check."""
    values = iter(measurements)

    def measure():
        forget, retain, *distance = next(values)
        return {"forget_error": forget, "retain_error": retain,
                "forget_embedding_distance": distance[0] if distance else 1.0, "retain_embedding_distance": 0.0}

    controller._measure = measure


def _start(controller, forget=1.0, retain=1.0, target=3.0):
    controller.start = {"forget_error": forget, "retain_error": retain, "forget_embedding_distance": 1.0,
                        "retain_embedding_distance": 0.0}
    controller.target = target
    controller.best["entry"] = controller.mark = controller._entry(0, controller.start)
    controller.path = [controller.best["entry"]]


def test_over_budget_and_not_recovering_goes_back_to_the_best_weights_and_optimiser_state(tiny_model):
    controller, method, parameters = _controller(tiny_model, target="3")
    _start(controller)
    optimizer = torch.optim.AdamW(parameters)
    _scripted(controller, [(1.5, 1.01), (2.0, 1.5), (2.0, 1.5)])

    def step():
        optimizer.zero_grad()
        sum((p ** 2).sum() for p in parameters).backward()
        optimizer.step()

    step()
    assert controller(1, optimizer) is False and len(controller.path) == 1  # not a check step
    assert controller(2, optimizer) is False  # within budget: the best so far
    saved = [p.detach().clone() for p in parameters]
    saved_moments = [optimizer.state[p]["exp_avg"].clone() for p in parameters]
    step()
    assert not all(torch.equal(p, b) for p, b in zip(parameters, saved))
    assert controller(4, optimizer) is False  # 50% rise: over budget, weaker, on from here
    assert controller.path[-1]["action"] == "weaker" and "went_back_to_step" not in controller.path[-1]
    assert not all(torch.equal(p, b) for p, b in zip(parameters, saved))
    assert controller(6, optimizer) is False  # still 50%: the retain error does not recover
    assert controller.path[-1]["went_back_to_step"] == 2
    assert all(torch.equal(p, b) for p, b in zip(parameters, saved))
    assert all(torch.equal(optimizer.state[p]["exp_avg"], m) for p, m in zip(parameters, saved_moments))
    assert method.forget_alpha == pytest.approx(0.2 * GROW * SHRINK * SHRINK)


def test_over_budget_and_recovering_keeps_the_forgetting_done(tiny_model):
    controller, method, parameters = _controller(tiny_model, target="3")
    _start(controller)
    _scripted(controller, [(2.0, 1.08), (2.0, 1.06), (2.0, 1.04)])
    assert not any(controller(step, torch.optim.AdamW(parameters)) for step in (2, 4, 6))
    assert method.forget_alpha == pytest.approx(0.2 * SHRINK)
    assert not any("went_back_to_step" in point for point in controller.path)
    assert controller.best["step"] == 6 and controller.best["entry"]["forget_progress"] == pytest.approx(0.5)


def test_the_run_strengthens_while_under_half_the_budget_and_stops_at_the_target(tiny_model):
    controller, method, parameters = _controller(tiny_model, target="3")
    _start(controller)
    optimizer = torch.optim.AdamW(parameters)
    _scripted(controller, [(1.5, 1.01), (2.0, 1.04), (2.5, 1.08), (3.1, 1.03)])
    assert controller(2, optimizer) is False and method.forget_alpha == pytest.approx(0.2 * GROW)  # 20% used
    assert controller(4, optimizer) is False and method.forget_alpha == pytest.approx(0.2 * GROW)  # 80%: hold
    assert controller(6, optimizer) is False and controller.path[-1]["action"] == "weaker"  # over budget
    assert method.forget_alpha == pytest.approx(0.2 * GROW * SHRINK)
    assert controller(8, optimizer) is True  # target reached within budget
    record = controller.finish(8)
    assert record["outcome"] == "target" and record["kept_step"] == 8 and record["message"].startswith("target")


def test_a_binding_budget_is_said_in_one_line_and_the_best_within_it_is_kept(tiny_model):
    controller, _, parameters = _controller(tiny_model, target="3")
    _start(controller)
    optimizer = torch.optim.AdamW(parameters)
    # over budget and not recovering: weaker, then back to step 2; the third time back, it stops
    _scripted(controller, [(1.4, 1.03)] + [(1.6, 1.2)] * (2 * MAX_BACKOFFS))
    results = [controller(step, optimizer) for step in range(2, 2 * (2 * MAX_BACKOFFS + 2), 2)]
    assert results == [False] * (2 * MAX_BACKOFFS) + [True]
    assert sum("went_back_to_step" in point for point in controller.path) == MAX_BACKOFFS
    record = controller.finish(2 * (2 * MAX_BACKOFFS + 1))
    assert record["outcome"] == "budget" and record["kept_step"] == 2
    assert "unreachable" in record["message"] and "\n" not in record["message"]


def test_stalled_forgetting_near_the_budget_stops(tiny_model):
    controller, _, parameters = _controller(tiny_model, target="3")
    _start(controller)
    _scripted(controller, [(1.5, 1.04)] * (PATIENCE + 1))
    results = [controller(step, torch.optim.AdamW(parameters)) for step in range(2, 2 * (PATIENCE + 2), 2)]
    assert results == [False] * PATIENCE + [True]
    assert controller.finish(2 * (PATIENCE + 1))["outcome"] == "budget"


def test_slow_steady_forgetting_is_not_a_stall(tiny_model):
    # near the budget, the forget error creeps up (0.6% of the way per check) or only the forget
    # embedding distance falls: both are progress, so the run goes on
    controller, _, parameters = _controller(tiny_model, target="3")
    _start(controller)
    creeping = [(1 + 0.012 * i, 1.04) for i in range(1, 3 * PATIENCE)]
    embedding = [(1.0, 1.04, 1 - 0.03 * i) for i in range(1, 3 * PATIENCE)]
    for measurements in (creeping, embedding):
        _start(controller)
        _scripted(controller, measurements)
        assert not any(controller(step, torch.optim.AdamW(parameters)) for step in range(2, 6 * PATIENCE, 2))


def test_a_run_that_forgets_nothing_says_so_and_does_not_blame_the_budget(tiny_model):
    # the forget error falls at every check while the retain error rises past the budget: the run
    # goes back to step 0 until it stops; nothing was forgotten, and the message says that
    controller, _, parameters = _controller(tiny_model, target="3")
    _start(controller)
    _scripted(controller, [(1 - 0.01 * i, 1.2) for i in range(1, 4 * MAX_BACKOFFS)])
    results = [controller(step, torch.optim.AdamW(parameters)) for step in range(2, 8 * MAX_BACKOFFS, 2)]
    assert True in results
    record = controller.finish(2 * (results.index(True) + 1))
    assert record["outcome"] == "no_progress" and record["kept_step"] == 0
    assert record["message"].startswith("no progress") and "budget binds" not in record["message"]
    assert "0.9" in record["message"] and "\n" not in record["message"]  # the fall is quoted


def test_steps_running_out_measures_the_last_step_and_says_so(tiny_model):
    controller, _, parameters = _controller(tiny_model, target="3", check_every=4)
    _start(controller)
    _scripted(controller, [(1.5, 1.01), (1.8, 1.02)])
    assert controller(4, torch.optim.AdamW(parameters)) is False
    record = controller.finish(6)  # the run ended between checks: the last model is measured too
    assert [p["step"] for p in record["path"]] == [0, 4, 6] and record["kept_step"] == 6
    assert record["outcome"] == "steps_ran_out" and "--steps" in record["message"]


def test_the_noise_target_is_the_original_models_error_on_noise(tiny_model):
    controller, _, _ = _controller(tiny_model)
    again, _, _ = _controller(copy.deepcopy(tiny_model))
    assert controller.target == again.target > 0 and controller.start == again.start


def test_on_a_weak_model_the_noise_target_is_raised_to_the_floor(tiny_model):
    # An untrained model completes a noise image about as well as the real one: its noise level is
    # no forgetting at all, so the target is the floor, and the record says why.
    controller, _, _ = _controller(tiny_model)
    original = controller.start["forget_error"]
    assert controller.noise_level < TARGET_FLOOR * original
    assert controller.target == pytest.approx(TARGET_FLOOR * original)
    assert controller.target_source.startswith("floor")
    controller.noise_level, controller.target_source = 0.5 * original, "floor"
    record = controller.finish(0)
    assert record["target_error"] == pytest.approx(TARGET_FLOOR * original, rel=1e-5)
    assert record["noise_level"] == pytest.approx(0.5 * original, rel=1e-5)


def test_a_noise_level_above_the_floor_is_the_target(tiny_model, monkeypatch):
    monkeypatch.setattr(Controller, "_noise_level", lambda self: 10 * self.start["forget_error"])
    controller, _, _ = _controller(tiny_model)
    assert controller.target == pytest.approx(10 * controller.start["forget_error"])
    assert controller.target_source.startswith("noise level")


def _validation_error(model, images, seed=0):
    hole = make_mask("center", len(images), model.image_size, model.mask_cell, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.eval()
        completed = model.complete(images, hole, torch.Generator().manual_seed(seed))
    return float(hole_mse(completed, images, hole).mean())


@pytest.mark.parametrize("name", sorted(METHODS))
def test_a_controlled_run_of_every_method_keeps_a_model_within_the_budget(tiny_model, name, tmp_path):
    original = copy.deepcopy(tiny_model)
    config = UnlearnConfig(method=name, steps=8, batch_size=4, lr=3e-3, warmup_steps=1, check_every=2,
                           val_images=8, retain_budget=0.02)
    splits, config = calibrated_request(name, tiny_model, _synthetic_splits(), config, tmp_path)
    model, record = unlearn(tiny_model, splits, config, out=tmp_path / "out")
    control = record["control"]
    assert [p["step"] for p in control["path"]][:2] == [0, 2] and control["outcome"] in (
        "target", "budget", "steps_ran_out", "no_progress")
    _, forget_val, retain_val = hold_out_validation(splits, 8, config.seed)
    retain_images = stack_images(retain_val)
    kept = _validation_error(model, retain_images)  # the saved model is the one recorded, within budget
    assert kept == pytest.approx(control["kept"]["retain_error"], abs=2e-6)
    assert kept <= _validation_error(original, retain_images) * (1 + config.retain_budget) + 2e-6
    assert (tmp_path / "out" / "control.png").is_file()
    assert record["data"]["counts"]["retain_train"] == len(splits.retain) - len(retain_val)
    page = write_report([tmp_path / "out"], tmp_path / "report.html").read_text()
    assert html.escape(control["message"]) in page and page.count("<tr>") >= len(control["path"])
    assert "control.png" in page


def test_every_family_gets_the_control(family_model):
    config = UnlearnConfig(steps=4, batch_size=4, lr=1e-3, warmup_steps=1, check_every=2, val_images=4)
    _, record = unlearn(family_model, _synthetic_splits(family_model.channels), config)
    assert [p["step"] for p in record["control"]["path"]][:2] == [0, 2]
    assert record["control"]["original"]["retain_embedding_distance"] == 0  # the student starts as the teacher


def test_a_fixed_alpha_run_is_todays_run(tiny_model):
    config = UnlearnConfig(steps=5, batch_size=4, lr=1e-3, warmup_steps=1, retain_budget=None)
    _, record = unlearn(tiny_model, _synthetic_splits(), config)
    assert "control" not in record and record["history"][-1]["step"] == 5
    assert "validation" not in record["data"]


@pytest.mark.parametrize("flags", [["--retain-budget", "0"], ["--retain-budget", "nan"], ["--retain-budget", "-1"],
                                   ["--forget-target", "abc"], ["--forget-target", "0.5"],
                                   ["--forget-target", "inf"], ["--check-every", "0"], ["--val-images", "0"]])
def test_bad_control_settings_end_in_one_line(tmp_path, capsys, flags):
    out = tmp_path / "out"
    code = main(["unlearn", "--model", "bundled", "--forget-classes", "Bag", "--out", str(out), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and flags[0] in err[0]
    assert not out.exists()


def test_the_unseen_target_is_the_original_error_on_held_out_images_and_needs_a_forget_list(tiny_model):
    from i2i_unlearn.control import resolve_target
    from i2i_unlearn.errors import UserError

    assert resolve_target("auto", forget_list=True) == "unseen"
    assert resolve_target("auto", forget_list=False) == "noise"
    assert resolve_target("3", forget_list=True) == "3"
    with pytest.raises(UserError, match="for a forget list"):
        resolve_target("unseen", forget_list=False)
    method = create_method("i2i", tiny_model)
    config = ControlConfig(forget_target="unseen", check_every=2, val_images=8)
    unseen = _images(8, 3)
    controller = Controller(method, _images(8, 1), _images(8, 2), config, method.trainable_parameters(),
                            unseen_val=unseen)
    expected = Controller(method, unseen, _images(8, 2), ControlConfig(check_every=2, val_images=8),
                          method.trainable_parameters()).start["forget_error"]
    assert controller.target == pytest.approx(expected)  # measured like the forget error, on the unseen images
    assert controller.noise_level is None and "unseen level" in controller.target_source
    with pytest.raises(UserError, match="held-out images"):
        Controller(method, _images(8, 1), _images(8, 2), config, method.trainable_parameters())


def _point(tiny_model, forget=1.0, target=1.5):
    """A controller aiming at a point (the unseen level), scripted from its start."""
    controller, method, parameters = _controller(tiny_model, target="3")
    controller.point = True
    _start(controller, forget=forget, target=target)
    return controller, method, torch.optim.AdamW(parameters)


def test_listed_images_no_better_known_than_unseen_ones_reach_the_unseen_target_at_once(tiny_model):
    controller, _, optimizer = _point(tiny_model, forget=1.2, target=1.0)  # already worse known than unseen ones
    _scripted(controller, [(1.3, 1.0)])
    assert controller(2, optimizer) is True
    result = controller.finish(2)
    assert result["outcome"] == "target" and result["kept_step"] == 0  # the untouched model was closest


def test_the_unseen_target_is_a_point_past_which_the_run_goes_back_weaker(tiny_model):
    controller, method, optimizer = _point(tiny_model)
    _scripted(controller, [(1.3, 1.0), (2.4, 1.0), (1.46, 1.0)])
    assert controller(2, optimizer) is False and controller.best["step"] == 2
    alpha = controller.alpha
    assert controller(4, optimizer) is False  # 2.4 is past 1.5 by far: back to step 2, weaker
    assert controller.path[-1]["went_back_to_step"] == 2 and controller.alpha == pytest.approx(alpha * SHRINK)
    assert controller(6, optimizer) is True  # 1.46 is within 5% of 1.5
    result = controller.finish(6)
    assert result["outcome"] == "target" and result["kept_step"] == 6


def test_a_forget_list_run_aims_at_the_unseen_level_by_default(tmp_path):
    from i2i_unlearn.models import FAMILIES, create_model

    probe = make_splits("fashion-mnist", 16, 1, forget_classes=["Bag"])
    (tmp_path / "forget.txt").write_text("\n".join(probe.forget.dataset.ids[i] for i in probe.forget.indices[:6]))
    splits = make_splits("fashion-mnist", 16, 1, forget_list=str(tmp_path / "forget.txt"), retain_limit=64)
    torch.manual_seed(0)
    model = create_model("mae", image_size=16, channels=1, **FAMILIES["mae"].tiny_settings())
    _, record = unlearn(model, splits, UnlearnConfig(steps=4, batch_size=4, check_every=2, val_images=6))
    assert record["config"]["forget_target"] == "unseen"
    assert record["control"]["target_source"].startswith("unseen level (the original model's error on 6 held-out")
