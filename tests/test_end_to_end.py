"""A tiny model trains, unlearns and evaluates through the CLI, and every run records itself."""

import json

from i2i_unlearn import relearn
from i2i_unlearn.cli import main
from conftest import small_attackers


def test_train_record(tiny_checkpoint):
    record = json.loads((tiny_checkpoint / "train_record.json").read_text())
    assert record["config"]["seed"] == 0 and record["config"]["steps"] == 30
    assert record["data"]["images"] == 60000 and "torch" in record["versions"]
    assert record["history"][-1]["loss"] < record["history"][0]["loss"]
    assert (tiny_checkpoint / "config.json").exists() and (tiny_checkpoint / "model.safetensors").exists()


def test_unlearn_then_evaluate_through_the_cli(tiny_checkpoint, tmp_path, capsys):
    unlearned = tmp_path / "unlearned"
    code = main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(unlearned), "--forget-classes",
                 "Trouser", "--retain-limit", "500", "--steps", "8", "--batch-size", "8", "--seed", "3"])
    assert code == 0
    record = json.loads((unlearned / "unlearn_record.json").read_text())
    assert record["config"]["seed"] == 3 and record["data"]["forget_classes"] == ["Trouser"]
    assert record["data"]["counts"]["retain"] == 500 and record["config"]["source_checkpoint"]
    report = tmp_path / "report"
    code = main(["evaluate", "--model", str(unlearned), "--out", str(report), "--forget-classes", "Trouser",
                 "--eval-per-class", "3", "--batch-size", "8"])
    assert code == 0
    metrics = json.loads((report / "metrics.json").read_text())["metrics"]
    assert metrics["retain"]["images"] == 27 and metrics["forget"]["images"] == 3
    for values in metrics.values():
        assert values["hole_mse"] > 0 and values["fid"] >= 0 and -1 <= values["cosine"] <= 1
    assert (report / "samples.png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert "retain hole_mse=" in printed and "kid_std" not in printed
    assert "(exact, whole sets)" in printed  # 27 and 3 images: KID is computed once, with no spread to show
    assert json.loads((report / "metrics.json").read_text())["evaluation"]["sampling_steps"] is None  # one pass


def test_demo_writes_metrics_pictures_and_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(relearn, "attacker", small_attackers)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "2", "--batch-size", "8", "--eval-per-class", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["forget_classes"] == ["Trouser", "Bag"] and metrics["family"] == "mae"
    for column in ("before", "after", "retrained"):  # the bundled retrained model left out these classes
        for set_name in ("retain", "forget"):
            assert {"hole_mse", "fid", "cosine", "kid", "ssim", "class_accuracy"} <= set(metrics[column][set_name])
    assert set(metrics["membership_inference"]) == {"original", "unlearned", "retrained"}
    assert metrics["evaluation"]["membership_sets"] == {"members": 8, "non_members": 8}
    for name in ("samples.png", "tsne.png", "relearn.png", "report.html"):
        assert (out / name).stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "membership inference AUC" in printed and "strong attacker: " in printed
    # the relearning probe, default attacker: each model's forget error after 0, 2, 4 fine-tuning steps
    probe = metrics["relearn"]
    assert probe["steps"] == [0, 2, 4] and probe["settings"]["lr"] == 1e-4
    for name in ("unlearned", "original", "retrained"):
        assert len(probe[name]) == 3 and all(error > 0 for error in probe[name])
    assert probe["original"][0] == probe["original_error"]
    assert probe["steps_to_relearn"]["original"] == 0  # within 1.25x of itself from the start
    strong = probe["strong"]
    assert strong["settings"]["lr"] == [1e-4, 3e-4, 1e-3] and "0.001" in strong["curves"]["unlearned"]  # strongest first
    assert set(strong["steps_to_relearn"]) == {"unlearned", "original", "retrained"}
    # the deletion is certified, with its metrics, shown in the report, and recomputable by verify
    certificate = json.loads((out / "model" / "certificate.json").read_text())
    assert certificate["metrics"]["after"] == metrics["after"]
    assert set(certificate["relearning"]) == {"default", "strong"}
    assert certificate["relearning"]["default"]["steps_to_relearn"] == probe["steps_to_relearn"]["unlearned"]
    assert certificate["relearning"]["default"]["last_error"] == probe["unlearned"][-1]
    assert certificate["data"]["forget"]["classes"] == {"Trouser": 6000, "Bag": 6000}
    assert "deletion certificate" in (out / "report.html").read_text()
    assert main(["verify", str(out / "model"), "--evaluate"]) == 0
    assert "checkpoints, data, metrics match" in capsys.readouterr().out


def test_unlearning_runs_as_two_processes(tiny_checkpoint, tmp_path):
    """The shared loop runs under Accelerate: two CPU processes (torchrun) unlearn together."""
    import subprocess
    import sys

    out = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "i2i_unlearn.cli",
               "unlearn", "--model", str(tiny_checkpoint), "--out", str(out), "--forget-classes", "Trouser",
               "--retain-limit", "200", "--steps", "4", "--batch-size", "4", "--cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((out / "unlearn_record.json").read_text())
    assert record["processes"] == 2 and (out / "model.safetensors").exists()
    assert result.stdout.count("unlearned in") == 1


def test_an_unlearned_checkpoint_keeps_its_sources_precision_unless_told(tiny_checkpoint, tmp_path):
    import torch
    from safetensors import safe_open

    from i2i_unlearn.models import load_model

    half = tmp_path / "half"
    load_model(tiny_checkpoint).save_pretrained(half, dtype=torch.float16)

    def stored(folder):
        with safe_open(str(folder / "model.safetensors"), "pt") as weights:
            return {weights.get_slice(name).get_dtype() for name in weights.keys()}

    flags = ["--forget-classes", "Trouser", "--retain-limit", "50", "--steps", "2", "--batch-size", "4", "--fixed-alpha"]
    assert main(["unlearn", "--model", str(half), "--out", str(tmp_path / "a"), *flags]) == 0
    assert stored(tmp_path / "a") == {"F16"}
    record = json.loads((tmp_path / "a" / "unlearn_record.json").read_text())
    assert record["config"]["save_dtype"] == "float16"  # the effective value, not null
    assert main(["unlearn", "--model", str(half), "--out", str(tmp_path / "b"), "--save-dtype", "float32", *flags]) == 0
    assert stored(tmp_path / "b") == {"F32"}
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "c"), *flags]) == 0
    assert stored(tmp_path / "c") == {"F32"}


def test_the_readmes_python_example_runs(tmp_path, monkeypatch, capsys):
    """The README's API example, as written, with its sizes cut to a test's (each cut must apply)."""
    import pathlib
    import re

    readme = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    for long, short in (("per_class=50", "per_class=2"),
                        ("UnlearnConfig(steps=300)", "UnlearnConfig(steps=2, batch_size=4, retain_budget=None)")):
        assert long in code, long
        code = code.replace(long, short)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    before, _, after = capsys.readouterr().out.split()[-3:]
    assert float(before) > 0 and float(after) > 0
    assert (tmp_path / "runs" / "api" / "certificate.json").is_file()


def test_the_samples_demo_deletes_listed_images_and_checks_them_with_the_calibrated_attack(tmp_path, capsys):
    out = tmp_path / "samples"
    assert main(["demo", "--scenario", "samples", "--out", str(out), "--steps", "2", "--batch-size", "8",
                 "--eval-per-class", "4", "--check-every", "1", "--val-images", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    membership = metrics["membership"]
    assert set(membership) == {"forgotten", "kept"}
    assert set(membership["forgotten"]) == {"before", "after", "reference", "after_minus_reference_95"}
    assert set(membership["kept"]) == {"before", "after", "after_minus_before_95"}
    assert all(0 <= auc <= 1 for group in membership.values() for name, auc in group.items() if "95" not in name)
    for low, high in (membership["forgotten"]["after_minus_reference_95"], membership["kept"]["after_minus_before_95"]):
        assert -1 <= low <= high <= 1
    attack = metrics["membership_attacks"]["before"]["forgotten"]
    assert attack["calibrated"]["auc"] == membership["forgotten"]["before"]
    assert (attack["members"], attack["non_members"]) == (32, 64) and "tpr_at_1pct_fpr" in attack["loss"]
    for column in ("before", "after", "reference"):
        assert set(metrics[column]) == {"retain", "forget", "kept"} and metrics[column]["retain"]["images"] == 40
    assert metrics["data"]["counts"]["forget"] == 32 and metrics["unlearn_config"]["forget_target"] == "unseen"
    # the MAE deletes image by image against the bundled model (the attack's calibration model too)
    assert metrics["method"] == "calibrated" and metrics["control"]["target_source"].startswith("calibrated level")
    certificate = json.loads((out / "model" / "certificate.json").read_text())
    assert certificate["calibration_checkpoint"]["path"] == metrics["calibration_model"]
    assert certificate["membership"]["forgotten"]["after"] == metrics["membership_attacks"]["after"]["forgotten"]
    assert len(certificate["data"]["forget"]["images"]) == 32
    report = (out / "report.html").read_text()
    assert (out / "samples.png").stat().st_size > 1000 and "verdict" in report
    assert "after − reference: 95% interval" in report
    assert "forgotten images: before" in capsys.readouterr().out
    assert main(["verify", str(out / "model"), "--evaluate"]) == 0
