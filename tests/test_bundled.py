"""The bundled model: it loads, inpaints, and a short unlearning run does what the paper says."""

import json
from pathlib import Path

import pytest
import torch

from i2i_unlearn.data import make_mask, make_splits, subset_per_class
from i2i_unlearn.metrics import hole_mse
from i2i_unlearn.data.degradations import canonical
from i2i_unlearn.models import bundled_for_task, bundled_model_path, bundled_names, load_model
from i2i_unlearn.unlearn import UnlearnConfig, unlearn


def _centre_mse(model, subset) -> float:
    images = torch.stack([subset[i][0] for i in range(len(subset))])
    hole = make_mask("center", len(images), model.image_size, model.mask_cell)
    return float(hole_mse(model.complete(images, hole), images, hole).mean())


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_checkpoint_is_small_complete_and_loads(name):
    folder = bundled_model_path(name)
    weights = list(folder.rglob("*.safetensors"))  # a VQ-GAN's tokenizer sits in a sub-folder
    assert weights and sum(path.stat().st_size for path in weights) < 10 * 2**20
    if (folder / "memorise_record.json").is_file():  # a bundled model fine-tuned until it memorised private images
        record = json.loads((folder / "memorise_record.json").read_text())
        lists = bundled_model_path(name).parent / "private-fashion-mnist"
        expected = "kept.txt" if name.endswith("-reference") else "private.txt"
        listed = [line for line in (lists / expected).read_text().splitlines() if not line.startswith("#")]
        assert record["data"]["listed"] == listed and record["config"]["seed"] == 0
        assert Path(record["config"]["source_checkpoint"]).name == name.split("-private")[0]
        assert load_model(f"bundled:{name}").family == record["config"]["family"]
        return
    record = json.loads((folder / "train_record.json").read_text())
    excluded = record["data"]["excluded_classes"]
    if record["config"]["dataset"] == "fashion-mnist":
        assert record["data"]["images"] == 60000 - 6000 * len(excluded)
    assert record["config"]["seed"] == 0 and ("retrain" in name) == bool(excluded)
    model = load_model(f"bundled:{name}")
    assert model.family == record["config"]["family"] and model.image_size == 32
    task = record["config"].get("task")  # a model for a degradation: its config says which, its name too
    assert model.degradation == (canonical(task) if task else None)
    init = record["config"].get("init")
    assert init is None or init.startswith("bundled:")  # made from the package alone, so it can be made again
    if task:
        assert task.partition(":")[0] in name
        if not excluded:
            assert bundled_for_task(model.family, task) == folder


def test_bundled_mae_has_its_position_tables():
    model = load_model("bundled")
    assert model.hf.vit.embeddings.position_embeddings.abs().sum() > 0


def test_short_unlearning_forgets_the_forget_set_and_keeps_the_rest():
    model = load_model("bundled")
    splits = make_splits("fashion-mnist", 32, 1, forget_classes=["Trouser", "Sneaker"], retain_limit=5000)
    retain_test = subset_per_class(splits.retain_test, 25)
    forget_test = subset_per_class(splits.forget_test, 50)
    before = _centre_mse(model, retain_test), _centre_mse(model, forget_test)
    unlearn(model, splits, UnlearnConfig(steps=120, batch_size=32, retain_budget=None))
    after = _centre_mse(model, retain_test), _centre_mse(model, forget_test)
    assert after[1] > 2.5 * before[1], (before, after)
    assert after[0] < 1.2 * before[0], (before, after)
