"""Model families behind one interface (`I2IModel`), and loading by folder or name.

`FAMILIES` is the registry: a new family is one file in this folder plus one entry here, and
the family contract tests (tests/test_families.py) run on it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from .base import NOISE_KINDS, Draw, I2IModel, noise_like
from .diffusion import DiffusionModel
from .mae import MAEModel
from .vqgan import VQGANModel

FAMILIES: dict[str, type[I2IModel]] = {"mae": MAEModel, "diffusion": DiffusionModel, "vqgan": VQGANModel}
# How a folder written by a library says what it is: transformers' model_type, diffusers' _class_name.
MODEL_TYPES = {"vit_mae": "mae"}
CLASS_NAMES = {"UNet2DModel": "diffusion"}
ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_BUNDLED = {"mae": "mae-fashion-mnist", "diffusion": "diffusion-fashion-mnist", "vqgan": "vqgan-fashion-mnist"}


def bundled_names() -> list[str]:
    """Names of the checkpoints that ship with the package (any family)."""
    return sorted(p.name for p in ASSETS.iterdir()
                  if (p / "config.json").is_file() and not p.name.startswith("classifier"))


def bundled_model_path(name: str = "mae-fashion-mnist") -> Path:
    """Folder of a checkpoint that ships with the package; a family name gives its default one."""
    name = DEFAULT_BUNDLED.get(name, name)
    if not (ASSETS / name / "config.json").is_file():
        raise UserError(f"no bundled checkpoint {name!r}; bundled: {', '.join(bundled_names())}")
    return ASSETS / name


def bundled_for_task(family: str, task: str | None = None) -> Path:
    """The bundled checkpoint of `family` for `task`: the family's default one for holes (no task, or a
    mask), else the one trained to invert that degradation (a retrained or memorised twin never)."""
    from ..data.degradations import canonical, is_degradation

    if family not in DEFAULT_BUNDLED:
        raise UserError(f"no bundled {family!r} model; bundled families: {', '.join(DEFAULT_BUNDLED)}")
    if not is_degradation(task):
        return bundled_model_path(family)
    FAMILIES[family].check_can_learn(task)
    wanted, offered = canonical(task), []
    for name in bundled_names():
        if "-retrain-" in name or "-private" in name:
            continue
        config = json.loads((ASSETS / name / "config.json").read_text())
        if config.get("i2i_family") == family and config.get("i2i_degradation"):
            offered.append(config["i2i_degradation"])
            if config["i2i_degradation"] == wanted:
                return ASSETS / name
    raise UserError(f"no bundled {family} model for {task}; bundled {family} tasks: holes"
                    + "".join(f", {spec}" for spec in offered))


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
    try:
        return FAMILIES[family].from_config(**settings)
    except TypeError as exc:  # an unknown keyword in --model-config
        raise UserError(f"bad settings for the {family} family ({exc}); see its from_config") from None


def family_of(folder: Path) -> str:
    """Which family a checkpoint folder holds, from its config.json; one clear error otherwise."""
    config_file = folder / "config.json"
    if not folder.is_dir() or not config_file.is_file():
        raise UserError(f"no checkpoint at {folder}: expected a folder with config.json and its weights "
                        "(or bundled:NAME for a bundled one)")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{config_file} is not valid JSON; the checkpoint is corrupt, restore it") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_file} is not a model config; the checkpoint is corrupt, restore it")
    claims = {name for name in (config.get("i2i_family"), MODEL_TYPES.get(config.get("model_type")),
                                CLASS_NAMES.get(config.get("_class_name"))) if name}
    weights = {"model.safetensors": "mae", "diffusion_pytorch_model.safetensors": "diffusion",
               "transformer.safetensors": "vqgan"}
    claims_by_weights = {family for file, family in weights.items() if (folder / file).is_file()}
    if len(claims) > 1 or len(claims_by_weights) > 1 or (claims and claims_by_weights - claims):
        found = ", ".join(sorted(claims | claims_by_weights))
        raise UserError(f"{folder} mixes files of several model families ({found}); give a folder that holds "
                        "one checkpoint")
    if not claims:
        kind = config.get("model_type") or config.get("_class_name") or config.get("i2i_family")
        raise UserError(f"{folder} holds a {kind!r} model, which no family here loads; supported: "
                        f"transformers ViTMAE (model_type vit_mae), diffusers UNet2DModel, or our checkpoints")
    family = claims.pop()
    if family not in FAMILIES:
        raise UserError(f"{folder} is a {family!r} checkpoint, a family this version does not have; "
                        f"families: {', '.join(FAMILIES)}")
    return family


def same_kind(reference: I2IModel, model: I2IModel, name: str, path: str) -> I2IModel:
    """`reference` (given as --`name` `path`) when it is of `model`'s family, size, channels and
    degradation; else one line naming the mismatch."""
    if (reference.family, reference.image_size, reference.channels) != (model.family, model.image_size,
                                                                        model.channels):
        raise UserError(f"--{name} {path} is a {reference.family} model of {reference.image_size}px x "
                        f"{reference.channels} channel(s); it must match --model ({model.family}, "
                        f"{model.image_size}px x {model.channels})")
    if reference.degradation != model.degradation:
        what = lambda m: f"turns {m.degradation} inputs into images" if m.degradation else "fills holes"  # noqa: E731
        raise UserError(f"--{name} {path} {what(reference)}, but --model {what(model)}; give a {name} model of the "
                        "same task")
    return reference


def load_model(path: str | Path) -> I2IModel:
    """Load a checkpoint folder of any family; `bundled` or `bundled:NAME` for ours."""
    folder = checkpoint_folder(path)
    return FAMILIES[family_of(folder)].from_pretrained(folder)


__all__ = ["I2IModel", "Draw", "noise_like", "NOISE_KINDS", "MAEModel", "DiffusionModel", "VQGANModel", "FAMILIES",
           "create_model", "load_model", "same_kind", "bundled_model_path", "bundled_for_task", "bundled_names",
           "checkpoint_folder", "family_of"]
