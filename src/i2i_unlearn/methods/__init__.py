"""Unlearning methods, one file each, behind `UnlearningMethod`; `METHODS` maps names to classes."""

from __future__ import annotations

from ..errors import UserError
from .base import NOISE_KINDS, UnlearningMethod, noise_like
from .calibrated import Calibrated
from .i2i import I2IUnlearning
from .i2i_max_loss import I2IMaxLoss
from .max_loss import MaxLoss
from .noisy_label import NoisyLabel
from .random_encoder import RandomEncoder
from .retain_label import RetainLabel

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (I2IUnlearning, I2IMaxLoss, MaxLoss, NoisyLabel, RetainLabel, RandomEncoder, Calibrated)}


AUTO = "auto"  # what a run uses unless --method names one; see resolve_method


def resolve_method(name: str, controlled: bool, calibrated: bool = False) -> str:
    """The method `name` stands for: itself, or for "auto" in a controlled run the calibrated deletion
    when a calibration model is given (a forget list: docs/deletion.md), else the paper's objective
    with Max Loss (i2i_max_loss), where the retain budget holds its unbounded ascent (docs/relearning.md);
    in a fixed-alpha run the paper's method (the paper's exact run)."""
    if name != AUTO:
        return name
    if not controlled:
        return I2IUnlearning.name
    return Calibrated.name if calibrated else I2IMaxLoss.name


def create_method(name: str, model, calibration=None, **settings) -> UnlearningMethod:
    """Build the method `name` around `model` (settings: mask, forget_alpha, retain_alpha, noise);
    `calibration`: a model that never trained on the forget images, for the methods that need one."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    if not METHODS[name].needs_calibration:
        return METHODS[name](model, **settings)
    if calibration is None:
        raise UserError(f"--method {name} needs --calibration MODEL: a model that never trained on the listed "
                        "images (the model before the fine-tune that saw them)")
    return METHODS[name](model, calibration=calibration, **settings)


__all__ = ["UnlearningMethod", "METHODS", "AUTO", "resolve_method", "create_method", "noise_like", "NOISE_KINDS"]
