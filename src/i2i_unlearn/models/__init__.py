"""Model families behind one interface (`I2IModel`), and loading by folder or name."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .base import I2IModel
from .mae import MAEModel

FAMILIES = {"mae": MAEModel}
# transformers' model_type in config.json -> our family
MODEL_TYPES = {"vit_mae": "mae"}
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def bundled_model_path(name: str = "mae-fashion-mnist") -> Path:
    """Folder of a checkpoint that ships with the package."""
    return ASSETS / name


def checkpoint_folder(path: str | Path) -> Path:
    """The folder a `--model` value names: a path, or `bundled` / `bundled:NAME` for ours."""
    text = str(path)
    if text == "bundled" or text.startswith("bundled:"):
        return bundled_model_path(text.partition(":")[2] or "mae-fashion-mnist")
    return Path(path)


def create_model(family: str, **settings) -> I2IModel:
    """A freshly initialised model of `family` (e.g. ``create_model("mae", image_size=32)``)."""
    if family not in FAMILIES:
        raise UserError(f"unknown model family {family!r}; choose from: {', '.join(FAMILIES)}")
    return FAMILIES[family].from_config(**settings)


def load_model(path: str | Path) -> I2IModel:
    """Load a checkpoint folder (config.json + weights); `bundled` or `bundled:NAME` for ours."""
    folder = checkpoint_folder(path)
    config_file = folder / "config.json"
    if not folder.is_dir() or not config_file.is_file():
        raise UserError(f"no checkpoint at {folder}: expected a folder with config.json and model.safetensors")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        raise UserError(f"{config_file} is not valid JSON; the checkpoint is corrupt, restore it") from None
    if model_type not in MODEL_TYPES:
        raise UserError(f"{folder} holds a {model_type!r} model; supported: {', '.join(MODEL_TYPES)}")
    return FAMILIES[MODEL_TYPES[model_type]].from_pretrained(folder)


__all__ = ["I2IModel", "MAEModel", "FAMILIES", "create_model", "load_model", "bundled_model_path",
           "checkpoint_folder"]
