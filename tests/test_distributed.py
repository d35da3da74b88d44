"""Evaluation shared out over processes gives the numbers of one process (two CPU processes, torchrun)."""

import json
import subprocess
import sys

import pytest

from i2i_unlearn.cli import main
from i2i_unlearn.data import make_splits
from i2i_unlearn.evaluate import eval_sets, evaluate
from i2i_unlearn.models import load_model

SCRIPT = """
import json, sys
from accelerate import PartialState
from i2i_unlearn.cli import main
from i2i_unlearn.data import make_splits
from i2i_unlearn.evaluate import eval_sets, evaluate
from i2i_unlearn.models import load_model

state = PartialState(cpu=True)  # as `--cpu` does: CPU processes (without it, a GPU-less launch is one process)
model = load_model(sys.argv[1])
completed = []
complete = model.complete
model.complete = lambda images, *args: completed.append(len(images)) or complete(images, *args)
splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser"])
metrics, _ = evaluate(model, eval_sets(splits, 5), "random:0.5", batch_size=8, progress=False, steps=2)
with open(f"{sys.argv[2]}.{state.process_index}", "w") as out:
    json.dump({"metrics": metrics, "images_completed": sum(completed)}, out)
"""


def test_two_processes_evaluate_like_one(family_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_UNLEARN_CACHE", "off")  # both runs compute real-image features themselves
    script = tmp_path / "evaluate.py"
    script.write_text(SCRIPT)
    out = tmp_path / "metrics.json"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script),
               str(family_checkpoint), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [json.loads(out.with_name(f"{out.name}.{rank}").read_text()) for rank in (0, 1)]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    counts = [rank["images_completed"] for rank in ranks]
    assert sum(counts) == 50 and min(counts) > 0  # the work is shared out: each image completed once
    shared = ranks[0]["metrics"]
    model = load_model(family_checkpoint)
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser"])
    alone, _ = evaluate(model, eval_sets(splits, 5), "random:0.5", batch_size=8, progress=False, steps=2)
    assert shared["retain"]["images"] == 45 and shared["forget"]["images"] == 5  # each image once
    for name, values in alone.items():
        assert shared[name] == pytest.approx(values, rel=1e-5, abs=1e-7), name


def test_evaluate_command_under_two_processes_writes_once(tiny_checkpoint, tmp_path):
    flags = ["--model", str(tiny_checkpoint), "--forget-classes", "Trouser", "--eval-per-class", "4",
             "--batch-size", "8", "--task", "random:0.5", "--classifier", "none", "--cpu"]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                          "i2i_unlearn.cli", "evaluate", *flags, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("membership inference AUC") == 1
    assert main(["evaluate", *flags, "--out", str(tmp_path / "one")]) == 0
    one, shared = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two"))
    assert shared["processes"] == 2 and one["processes"] == 1
    for name, values in one["metrics"].items():
        assert shared["metrics"][name] == pytest.approx(values, rel=1e-5), name
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["metrics.json", "samples.png"]
