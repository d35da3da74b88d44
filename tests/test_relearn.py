"""The relearning probe: every model fine-tuned alike on a few forget images, measured along the way."""

import json

from i2i_unlearn.cli import main


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
    assert "one family and size" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
