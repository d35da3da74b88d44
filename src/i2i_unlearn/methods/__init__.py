"""Unlearning methods, one file each, behind `UnlearningMethod`; `METHODS` maps names to classes."""

from __future__ import annotations

from ..errors import UserError
from .base import NOISE_KINDS, UnlearningMethod, noise_like
from .i2i import I2IUnlearning
from .max_loss import MaxLoss
from .noisy_label import NoisyLabel
from .random_encoder import RandomEncoder
from .retain_label import RetainLabel

METHODS: dict[str, type[UnlearningMethod]] = {
    cls.name: cls for cls in (I2IUnlearning, MaxLoss, NoisyLabel, RetainLabel, RandomEncoder)}


def create_method(name: str, model, **settings) -> UnlearningMethod:
    """Build the method `name` around `model` (settings: mask, forget_alpha, retain_alpha, noise)."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    return METHODS[name](model, **settings)


__all__ = ["UnlearningMethod", "METHODS", "create_method", "noise_like", "NOISE_KINDS"]
