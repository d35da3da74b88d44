"""Experiment tracking through Accelerate: --log-with tensorboard writes the curves, read back from the event files."""

import importlib.util
import json

import pytest

from i2i_unlearn.cli import main
from i2i_unlearn.models import FAMILIES

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _scalars(folder):
    files = list(folder.rglob("events.out.tfevents.*"))
    assert files, f"no event file under {folder}"
    tags = {}
    for file in files:
        events = event_accumulator.EventAccumulator(str(file))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            tags.setdefault(tag, []).extend((point.step, point.value) for point in events.Scalars(tag))
    return tags


def test_unlearn_logs_its_terms_checks_and_result_to_tensorboard(tiny_checkpoint, tmp_path):
    out = tmp_path / "unlearned"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Trouser",
                 "--retain-limit", "64", "--steps", "20", "--batch-size", "4", "--check-every", "10",
                 "--val-images", "4", "--log-with", "tensorboard"]) == 0
    tags = _scalars(tmp_path / "unlearned.logs")
    for tag in ("train/loss", "train/forget_term", "train/retain_term", "train/lr"):
        assert [step for step, _ in tags[tag]] == [10, 20], tag
    history = json.loads((out / "unlearn_record.json").read_text())["history"]
    assert tags["train/loss"][-1][1] == pytest.approx(history[-1]["loss"], rel=1e-5)
    assert [step for step, _ in tags["control/forget_ratio"]] == [10, 20]  # the controller's checks
    assert "result/forget_ratio" in tags and "result/retain_rise" in tags


def test_train_logs_its_loss(tmp_path):
    assert main(["train", "--image-size", "16", "--model-config", json.dumps(FAMILIES["mae"].tiny_settings()),
                 "--steps", "10", "--batch-size", "8", "--warmup-steps", "2", "--out", str(tmp_path / "m"),
                 "--log-with", "tensorboard", "--log-dir", str(tmp_path / "tb")]) == 0
    assert [step for step, _ in _scalars(tmp_path / "tb")["train/loss"]] == [10]


@pytest.mark.parametrize("name, message", [("tensorbored", "no tracker Accelerate knows"),
                                           ("wandb", "needs the wandb package")])
def test_an_unknown_or_missing_tracker_is_one_line(tiny_checkpoint, tmp_path, capsys, name, message):
    if name == "wandb" and importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    out = tmp_path / "out"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Trouser",
                 "--log-with", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists() and not (tmp_path / "out.logs").exists()


def test_an_unusable_log_dir_is_one_line(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "out"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Trouser",
                 "--log-with", "tensorboard", "--log-dir", str(tmp_path / "a-file" / "logs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot create --log-dir" in err[0] and "is not a folder" in err[0]
    assert not out.exists()
