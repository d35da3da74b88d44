"""Sample-level deletion against a calibration model (methods/calibrated.py, control.calibration_scale)."""

import copy
import json
import math

import pytest
import torch

from i2i_unlearn import UserError
from i2i_unlearn.audit import checkpoint_digest, verify
from i2i_unlearn.cli import main
from i2i_unlearn.control import calibration_scale, family_loss
from i2i_unlearn.metrics.membership import calibrated_auc
from i2i_unlearn.methods import AUTO, create_method, resolve_method
from i2i_unlearn.models import FAMILIES, create_model
from i2i_unlearn.unlearn import UnlearnConfig, unlearn

from conftest import forget_list_request, nudged_copy


def _images(model, n=4, seed=0):
    shape = (n, model.channels, model.image_size, model.image_size)
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _tiny_mae(seed=0):
    torch.manual_seed(seed)
    return create_model("mae", image_size=16, channels=1, **FAMILIES["mae"].tiny_settings())


def test_the_forget_term_is_the_mean_squared_log_ratio_to_the_scaled_calibration_loss(family_model):
    calibration = nudged_copy(family_model)
    method = create_method("calibrated", family_model, calibration=calibration)
    method.scale.fill_(1.3)
    images = _images(family_model, seed=1)
    draw = family_model.draw(images, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        term = method.forget_term(images, draw, _images(family_model, seed=2)).item()
        mine = family_model.task_loss(images, draw, reduction="none")
        theirs = calibration.task_loss(images, draw, reduction="none")
    by_hand = sum((math.log(m) - math.log(1.3 * t)) ** 2 for m, t in zip(mine.tolist(), theirs.tolist())) / len(mine)
    assert term == pytest.approx(by_hand, rel=1e-4)
    assert term > 0


def test_the_forget_term_is_zero_when_every_image_is_at_its_target():
    model = _tiny_mae()
    method = create_method("calibrated", model, calibration=copy.deepcopy(model))  # scale 1: the same losses
    images = _images(model)
    with torch.no_grad():
        assert method.forget_term(images, model.draw(images), images).item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("scale, direction", [(2.0, 1), (0.5, -1)])
def test_the_forget_term_raises_a_loss_below_its_target_and_lowers_one_above_it(scale, direction):
    """Forgotten, not turned to noise: an image pushed past its target is pulled back."""
    model = _tiny_mae()
    method = create_method("calibrated", model, calibration=copy.deepcopy(model))
    method.scale.fill_(scale)
    parameters = method.trainable_parameters()
    optimizer = torch.optim.Adam(parameters, lr=1e-3)
    images = _images(model, 8)
    draw = model.draw(images, generator=torch.Generator().manual_seed(0))

    def loss():
        with torch.no_grad():
            return model.task_loss(images, draw).item()

    before = loss()
    for _ in range(10):
        optimizer.zero_grad()
        method.forget_term(images, draw, images).backward()
        optimizer.step()
    assert (loss() - before) * direction > 0


def test_the_scale_of_a_model_against_itself_is_one_and_against_a_worse_one_below_one():
    model = _tiny_mae()
    images = _images(model, 8)
    assert calibration_scale(model, copy.deepcopy(model), images, "center", 0) == pytest.approx(1.0)
    worse = nudged_copy(model, size=0.5)
    expected = family_loss(model, images, "center", 0) / family_loss(worse, images, "center", 0)
    assert calibration_scale(model, worse, images, "center", 0) == pytest.approx(expected)
    assert calibration_scale(model, worse, None, "center", 0) == 1.0  # no unseen image: no correction


def test_auto_deletes_a_forget_list_against_the_calibration_model_and_the_certificate_names_it(tmp_path):
    assert resolve_method(AUTO, controlled=True, calibrated=True) == "calibrated"
    assert resolve_method(AUTO, controlled=False, calibrated=True) == "i2i"  # --fixed-alpha: the paper's run
    model = _tiny_mae()
    nudged_copy(model).save_pretrained(tmp_path / "calibration")
    splits = forget_list_request(tmp_path)
    config = UnlearnConfig(steps=4, batch_size=4, check_every=2, val_images=6,
                           calibration=str(tmp_path / "calibration"))
    _, record = unlearn(model, splits, config, out=tmp_path / "out")
    assert record["config"]["method"] == "calibrated"
    assert record["config"]["calibration_scale"] > 0
    assert record["control"]["target_source"].startswith("calibrated level (the calibration model's loss")
    certificate = json.loads((tmp_path / "out" / "certificate.json").read_text())
    assert certificate["calibration_checkpoint"]["sha256"] == checkpoint_digest(tmp_path / "calibration")["sha256"]
    assert verify(tmp_path / "out", check_data=False) == []
    with open(tmp_path / "calibration" / "config.json", "a") as handle:  # the model aimed at changes afterwards
        handle.write(" ")
    assert any("calibration checkpoint" in problem and "has changed" in problem
               for problem in verify(tmp_path / "out", check_data=False))


def test_a_calibration_model_is_refused_for_classes_of_another_kind_or_missing(tmp_path):
    model = _tiny_mae()
    classes = forget_list_request(tmp_path)
    classes.info = {**classes.info, "forget_list": None}
    nudged_copy(model).save_pretrained(tmp_path / "calibration")
    with pytest.raises(UserError, match="is for a forget list"):
        unlearn(model, classes, UnlearnConfig(steps=2, calibration=str(tmp_path / "calibration")))
    torch.manual_seed(0)
    other = create_model("mae", image_size=32, channels=1, **FAMILIES["mae"].tiny_settings())
    other.save_pretrained(tmp_path / "other")
    splits = forget_list_request(tmp_path)
    with pytest.raises(UserError, match=r"--calibration .* is a mae model of 32px .* it must match --model"):
        unlearn(model, splits, UnlearnConfig(steps=2, calibration=str(tmp_path / "other")))
    with pytest.raises(UserError, match="needs --calibration MODEL"):
        unlearn(model, splits, UnlearnConfig(method="calibrated", steps=2))
    with pytest.raises(UserError, match="no checkpoint at"):
        unlearn(model, splits, UnlearnConfig(steps=2, calibration=str(tmp_path / "nowhere")))


def test_the_cli_refuses_a_calibration_model_without_a_forget_list_and_writes_nothing(tiny_checkpoint, tmp_path,
                                                                                        capsys):
    out = tmp_path / "out"
    code = main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Bag",
                 "--calibration", str(tiny_checkpoint)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "--calibration is for a forget list" in error and len(error.splitlines()) == 1
    assert not out.exists()


def test_a_family_that_aims_at_the_unseen_level_keeps_it_by_default_given_a_calibration_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("diffusion", image_size=16, channels=1, **FAMILIES["diffusion"].tiny_settings())
    assert not model.calibrated_deletion  # measured: docs/deletion.md, H6
    nudged_copy(model).save_pretrained(tmp_path / "calibration")
    config = UnlearnConfig(steps=2, batch_size=4, check_every=1, val_images=4,
                           calibration=str(tmp_path / "calibration"))
    _, record = unlearn(model, forget_list_request(tmp_path), config)
    assert record["config"]["method"] == "i2i_max_loss" and "calibration_scale" not in record["config"]
    assert record["control"]["target_source"].startswith("unseen level")


def test_the_calibrated_auc_counts_the_pairs_a_listed_image_wins():
    # scores (reference loss minus model loss): listed 3, 2, 1; unseen 0, 1.5; the listed image wins 5 of 6 pairs
    auc = calibrated_auc(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 4.0, 4.0]),
                         torch.tensor([1.0, 1.0]), torch.tensor([1.0, 2.5]))
    assert auc == pytest.approx(5 / 6)


def test_the_attack_target_steers_on_the_attacks_auc_and_says_so(tmp_path):
    model = _tiny_mae()
    nudged_copy(model).save_pretrained(tmp_path / "calibration")
    config = UnlearnConfig(steps=4, batch_size=4, check_every=2, val_images=6, forget_target="attack",
                           calibration=str(tmp_path / "calibration"))
    _, record = unlearn(model, forget_list_request(tmp_path), config)
    control = record["control"]
    assert control["forget_target"] == "attack" and control["target_source"].startswith("the calibrated attack")
    assert len(control["path"]) >= 2
    for entry in control["path"]:  # the measure the point target reads is 1.5 - AUC: 1 where the attack cannot tell
        assert 0 <= entry["forget_auc"] <= 1
        assert entry["forget_error"] == pytest.approx(1.5 - entry["forget_auc"], abs=1e-5)
    assert "the calibrated attack's AUC on the validation split" in control["message"]


def test_the_attack_target_needs_a_forget_list_and_a_calibration_model(tmp_path):
    model = _tiny_mae()
    splits = forget_list_request(tmp_path)
    with pytest.raises(UserError, match="--forget-target attack needs --calibration MODEL"):
        unlearn(model, splits, UnlearnConfig(steps=2, forget_target="attack"))
    classes = forget_list_request(tmp_path)
    classes.info = {**classes.info, "forget_list": None}
    with pytest.raises(UserError, match="--forget-target attack is for a forget list"):
        unlearn(model, classes, UnlearnConfig(steps=2, forget_target="attack"))
