"""Degradations T(x) as boolean hole masks: True marks the pixels the model must fill in.

A task is named by a short spec: ``center[:side_ratio]`` (a centred square hole; 0.5 = a
quarter of the area, as in the paper), ``outpaint[:keep_ratio]`` (keep a centred window,
fill the border) or ``random[:mask_ratio]`` (random patches, as in MAE training).
"""

from __future__ import annotations

import torch

from ..errors import UserError

DEFAULTS = {"center": 0.5, "outpaint": 0.5, "random": 0.75}


def parse_task(spec: str) -> tuple[str, float]:
    """Split a task spec like ``center:0.5`` into its kind and ratio (checked)."""
    kind, _, value = spec.partition(":")
    if kind not in DEFAULTS:
        raise UserError(f"unknown mask {spec!r}; use center[:ratio], outpaint[:ratio] or random[:ratio]")
    try:
        ratio = float(value) if value else DEFAULTS[kind]
    except ValueError:
        raise UserError(f"bad ratio in mask {spec!r}; give a number between 0 and 1, e.g. {kind}:0.5") from None
    if not 0 < ratio < 1:
        raise UserError(f"mask ratio in {spec!r} must be between 0 and 1 (exclusive)")
    return kind, ratio


def _centre_square(size: int, side: int) -> torch.Tensor:
    square = torch.zeros(size, size, dtype=torch.bool)
    start = (size - side) // 2
    square[start:start + side, start:start + side] = True
    return square


def make_mask(spec: str, batch: int, size: int, patch_size: int = 1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Hole masks of shape (batch, 1, size, size) for the task `spec`.

    Square holes and windows are aligned to `patch_size` so that a patch-based model sees
    exactly the hole; random masks hide whole patches, the same count in every image.
    """
    kind, ratio = parse_task(spec)
    if kind in ("center", "outpaint"):
        side = max(patch_size, round(size * ratio / patch_size) * patch_size)
        side = min(side, size - patch_size) if kind == "outpaint" else min(side, size)
        square = _centre_square(size, side)
        hole = square if kind == "center" else ~square
        return hole.expand(batch, 1, size, size).clone()
    grid = size // patch_size
    count = grid * grid
    masked = max(1, min(count - 1, round(count * ratio)))
    scores = torch.rand(batch, count, generator=generator)
    order = scores.argsort(dim=1)
    patches = torch.zeros(batch, count, dtype=torch.bool)
    patches.scatter_(1, order[:, :masked], True)
    patches = patches.view(batch, 1, grid, grid)
    return patches.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3)


def apply_mask(images: torch.Tensor, hole: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """The degraded image a person sees: hole pixels replaced by a flat `fill` value."""
    return torch.where(hole, torch.full_like(images, fill), images)
