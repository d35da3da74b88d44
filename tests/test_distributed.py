"""Work shared out over processes gives the result of one process (two CPU processes, torchrun):
evaluation the same numbers, unlearning the same batches and, where a step draws nothing at random,
the same weights."""

import json
import subprocess
import sys

import pytest
import torch

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


UNLEARN = """
import json, sys
import torch
from accelerate import PartialState
from safetensors.torch import save_file
from i2i_unlearn.data import make_splits
from i2i_unlearn.models import load_model
from i2i_unlearn.unlearn import UnlearnConfig, unlearn

checkpoint, out, batch, mask, noise, forget_images = sys.argv[1:7]
state = PartialState(cpu=True)
model = load_model(checkpoint)
splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser"])
if forget_images != "all":
    splits.forget = torch.utils.data.Subset(splits.forget, range(int(forget_images)))
seen, holes = {"forget": [], "retain": []}, []

class Recorded(torch.utils.data.Dataset):  # notes which images this process reads, in order
    def __init__(self, data, name):
        self.data, self.name = data, name
    def __len__(self):
        return len(self.data)
    def __getitem__(self, index):
        seen[self.name].append(index)
        return self.data[index]

splits.forget, splits.retain = Recorded(splits.forget, "forget"), Recorded(splits.retain, "retain")
draw = model.draw
model.draw = lambda images, *args: holes.append(draw(images, *args)) or holes[-1]
config = UnlearnConfig(steps=40, batch_size=int(batch), lr=1e-3, warmup_steps=0, forget_alpha=1.0, retain_budget=None,
                       mask=mask or None, noise=noise)
model, record = unlearn(model, splits, config, cpu=True)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}.{state.process_index}.safetensors")
with open(f"{out}.{state.process_index}.json", "w") as file:
    json.dump({"seen": seen, "first_hole": holes[0].hole.flatten().tolist(), "history": record["history"],
               "processes": record["processes"]}, file)
"""


def _unlearn(tmp_path, checkpoint, name, processes, batch, mask="", noise="normal", forget_images="all"):
    """Run the UNLEARN script with 1 or 2 processes; return each process's record and weights."""
    from safetensors.torch import load_file

    script = tmp_path / "unlearn.py"
    script.write_text(UNLEARN)
    out = tmp_path / name
    launch = [sys.executable] + (["-m", "torch.distributed.run", "--nproc_per_node", "2"] if processes == 2 else [])
    result = subprocess.run([*launch, str(script), str(checkpoint), str(out), str(batch), mask or "", noise,
                             str(forget_images)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return [(json.loads(out.with_name(f"{name}.{rank}.json").read_text()),
             load_file(out.with_name(f"{name}.{rank}.safetensors"))) for rank in range(processes)]


def test_two_processes_unlearn_on_the_batches_of_one(family_checkpoint, tmp_path):
    """Global batch 8 as 2 processes x 4 or 1 x 8, same seed: each step the two processes read
    together exactly the images one process reads, draw their own holes and noise, and end with
    one model."""
    (first, weights), (second, weights_two) = _unlearn(tmp_path, family_checkpoint, "two", 2, 4)
    [(alone, _)] = _unlearn(tmp_path, family_checkpoint, "one", 1, 8)
    for name in ("forget", "retain"):
        for step in range(40):
            shared = first["seen"][name][4 * step:4 * step + 4] + second["seen"][name][4 * step:4 * step + 4]
            assert sorted(shared) == sorted(alone["seen"][name][8 * step:8 * step + 8]), (name, step)
    assert first["first_hole"] != second["first_hole"]  # each process its own random draw
    assert all(torch.equal(weights[k], weights_two[k]) for k in weights)  # gradients were averaged: one model
    assert first["history"] == second["history"] and first["processes"] == 2  # losses averaged over processes


def test_two_processes_unlearn_to_the_weights_of_one(tiny_checkpoint, tmp_path):
    """Where a step draws nothing at random (an MAE, the centre hole, constant noise of one forget
    image), 2 processes x 4 images reach the weights of 1 process x 8 within float rounding.
    Tolerance: 1e-4 largest difference per weight after 40 steps at lr 1e-3, against weights that
    move by about 4e-2 (measured: 8e-6)."""
    [(_, two), _] = _unlearn(tmp_path, tiny_checkpoint, "two", 2, 4, "center", "constant", 1)
    [(_, one)] = _unlearn(tmp_path, tiny_checkpoint, "one", 1, 8, "center", "constant", 1)
    from i2i_unlearn.models import load_model

    start = load_model(tiny_checkpoint).state_dict()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-2  # the run changed the model
    assert max((two[k] - one[k]).abs().max().item() for k in one) < 1e-4


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


def test_demo_under_two_processes_writes_once_what_one_process_writes(tmp_path, capsys):
    flags = ["demo", "--steps", "2", "--batch-size", "8", "--eval-per-class", "4", "--fixed-alpha", "--cpu",
             "--relearn", "none"]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                          "i2i_unlearn.cli", *flags, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("membership inference AUC") == 1 and two.stdout.count("evaluating the bundled") == 1
    assert main([*flags, "--out", str(tmp_path / "one")]) == 0
    one, shared = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two"))
    for column in ("before", "retrained"):  # the same models, evaluated on shared-out batches
        for name, values in one[column].items():
            assert shared[column][name] == pytest.approx(values, rel=1e-5), (column, name)
    listing = lambda folder: sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))  # noqa: E731
    assert listing(tmp_path / "two") == listing(tmp_path / "one")


@pytest.mark.parametrize("command", [
    ["train", "--image-size", "16", "--model-config", '{"patch_size": 4, "hidden_size": 32, "depth": 1, "heads": 2, '
     '"decoder_hidden_size": 32, "decoder_depth": 1, "decoder_heads": 2}', "--steps", "4", "--batch-size", "8"],
    ["train-classifier", "--image-size", "16", "--width", "4", "--steps", "4", "--batch-size", "8"]])
def test_training_under_two_processes_writes_once(command, tmp_path):
    out = tmp_path / "two"
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                             "i2i_unlearn.cli", *command, "--cpu", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("trained") == 1  # one process speaks
    record = json.loads((out / "train_record.json").read_text())
    assert record["processes"] == 2 and record["history"]
    assert list(tmp_path.iterdir()) == [out]  # no temporary or partial folder left behind
