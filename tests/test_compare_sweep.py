"""`compare` and `sweep` run end to end on a tiny model and write their files."""

import json

import pytest

from conftest import small_attackers
from i2i_unlearn import relearn
from i2i_unlearn.cli import main
from i2i_unlearn.compare import markdown_table
from i2i_unlearn.methods import METHODS

FAST = ["--forget-classes", "Trouser", "--retain-limit", "200", "--steps", "2", "--batch-size", "4",
        "--eval-per-class", "2", "--warmup-steps", "1", "--sampling-steps", "2"]


@pytest.fixture(scope="module")
def compare_run(family_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relearn, "attacker", small_attackers)
        assert main(["compare", "--model", str(family_checkpoint), "--retrained", str(family_checkpoint),
                     "--out", str(out), *FAST]) == 0
    return out


def test_compare_writes_a_table_for_every_method(compare_run):
    results = json.loads((compare_run / "compare.json").read_text())["results"]
    # every method but those that need a calibration model (a forget list's), which this class request has not
    assert list(results) == ["original", *(n for n, cls in METHODS.items() if not cls.needs_calibration), "retrained"]
    for name, row in results.items():
        for set_name in ("retain", "forget"):
            assert {"fid", "kid", "is", "cosine", "hole_mse", "ssim", "class_accuracy"} <= set(row["metrics"][set_name])
        assert "to_retrained" in row and 0 <= row["membership_auc"] <= 1
    # The retrained model is its own reference: zero distance, cosine one.
    assert results["retrained"]["to_retrained"]["hole_mse"] == 0
    assert results["retrained"]["to_retrained"]["cosine"] == pytest.approx(1.0, abs=1e-5)
    assert results["i2i"]["seconds"] > 0
    # every model's steps to relearn under both attackers; the original relearns at once
    assert all(set(row["steps_to_relearn"]) == {"default", "strong"} for row in results.values())
    assert results["original"]["steps_to_relearn"] == {"default": 0, "strong": 0}
    probe = json.loads((compare_run / "compare.json").read_text())["relearn"]
    assert set(probe["default"]) >= set(results) and probe["default"]["steps"] == [0, 2, 4]
    table = (compare_run / "compare.md").read_text()
    assert table.count("\n") == len(results) + 2 and "| i2i |" in table and "relearnt at (strong attacker)" in table
    assert (compare_run / "samples.png").stat().st_size > 0
    assert json.loads((compare_run / "models" / "max_loss" / "config.json").read_text())["i2i_family"]


def test_sweep_plots_one_point_per_alpha(family_checkpoint, compare_run, tmp_path):
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(family_checkpoint), "--alphas", "0.1,1", "--compare",
                 str(compare_run / "compare.json"), "--out", str(out), *FAST]) == 0
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert set(points) == {"0.1", "1.0"}
    assert (out / "tradeoff.png").stat().st_size > 10000


def test_markdown_table_marks_missing_values():
    row = {"metrics": {"retain": {"fid": 1.0, "cosine": 0.5, "hole_mse": 0.1},
                       "forget": {"fid": 2.0, "cosine": 0.4, "hole_mse": 0.2}}, "seconds": None}
    table = markdown_table({"original": row})
    assert "| original | 1 | - | - | 0.5 | 0.1 | - | - | 2 | - | - | 0.4 | 0.2 | - | - | - | - | - | - |" in table
