"""Unlearning methods, one file each, behind `UnlearningMethod`; `METHODS` maps names to classes."""

from __future__ import annotations

from ..errors import UserError
from .base import NOISE_KINDS, UnlearningMethod, noise_like
from .i2i import I2IUnlearning
from .i2i_max_loss import I2IMaxLoss
from .max_loss import MaxLoss
from .noisy_label import NoisyLabel
from .random_encoder import RandomEncoder
from .retain_label import RetainLabel

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (I2IUnlearning, I2IMaxLoss, MaxLoss, NoisyLabel, RetainLabel, RandomEncoder)}


AUTO = "auto"  # what a run uses unless --method names one; see resolve_method


def resolve_method(name: str, controlled: bool) -> str:
    """The method `name` stands for: itself, or for "auto" the paper's objective with Max Loss
    (i2i_max_loss) in a controlled run, where the retain budget holds its unbounded ascent, and the
    paper's method in a fixed-alpha run (the paper's exact run). Why: docs/relearning.md."""
    if name != AUTO:
        return name
    return I2IMaxLoss.name if controlled else I2IUnlearning.name


def create_method(name: str, model, **settings) -> UnlearningMethod:
    """Build the method `name` around `model` (settings: mask, forget_alpha, retain_alpha, noise)."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    return METHODS[name](model, **settings)


__all__ = ["UnlearningMethod", "METHODS", "AUTO", "resolve_method", "create_method", "noise_like", "NOISE_KINDS"]
