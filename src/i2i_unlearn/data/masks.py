"""Degradations T(x) as boolean hole masks: True marks the pixels the model must fill in.

A task is a mask spec or a whole-image degradation (data/degradations.py: sketch, lowres,
colourise, jpeg), whose hole is every pixel. A mask is named by a short spec:

- ``center[:side]``: a centred square hole (0.5 = half the side, a quarter of the area, as in
  the paper);
- ``outpaint[:keep]``: keep a centred window, fill the border;
- ``random[:ratio]``: random cells of a grid (MAE training; a cell is the model's patch);
- ``box[:max_side]``: one random rectangle per image, sides between a quarter of the image
  and `max_side` of it;
- ``strokes[:width]``: free-form brush strokes, `width` a fraction of the side;
- ``mage``: random cells at a rate drawn once per batch from a normal distribution truncated
  to [0.5, 1] (mean 0.55, sd 0.25), as MAGE trains its token transformer;
- ``hybrid``: per image a box (40%), brush strokes (40%) or a random border to outpaint (20%);
  Palette trains on boxes and strokes, the border adds outpainting.

Masks are drawn on a grid of `cell`-pixel cells: the family says which (an MAE's patch, so
that a patch model sees exactly the hole; a few pixels for a diffusion model, so that a
random mask is blocks, never salt-and-pepper pixels).
"""

from __future__ import annotations

import math

import torch

from ..errors import UserError
from .degradations import is_degradation, parse_degradation

DEFAULTS = {"center": 0.5, "outpaint": 0.5, "random": 0.75, "box": 0.6, "strokes": 0.12, "hybrid": None,
            "mage": None}
USAGE = "center[:side], outpaint[:keep], random[:ratio], box[:max_side], strokes[:width], hybrid or mage"


def parse_task(spec: str) -> tuple[str, float | None]:
    """Split a task spec like ``center:0.5`` or ``lowres:4`` into its kind and parameter (checked)."""
    if is_degradation(spec):
        return parse_degradation(spec)
    kind, _, value = str(spec).partition(":")
    if kind not in DEFAULTS:
        raise UserError(f"unknown task {spec!r}; use a mask ({USAGE}) or a degradation (sketch[:threshold], "
                        "lowres[:factor], colourise or jpeg[:quality])")
    if DEFAULTS[kind] is None:
        if value:
            raise UserError(f"mask {kind!r} takes no ratio; write just {kind}")
        return kind, None
    try:
        ratio = float(value) if value else DEFAULTS[kind]
    except ValueError:
        raise UserError(f"bad ratio in mask {spec!r}; give a number between 0 and 1, e.g. {kind}:0.5") from None
    if not 0 < ratio < 1:  # also refuses nan
        raise UserError(f"mask ratio in {spec!r} must be between 0 and 1 (exclusive), e.g. {kind}:0.5")
    return kind, ratio


def _centre_square(size: int, side: int) -> torch.Tensor:
    square = torch.zeros(size, size, dtype=torch.bool)
    start = (size - side) // 2
    square[start:start + side, start:start + side] = True
    return square


def _uniform(generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _box(size: int, cell: int, max_side: float, generator) -> torch.Tensor:
    grid = size // cell
    low = max(1, round(grid * 0.25))
    high = max(low, min(grid - 1, round(grid * max_side)))
    height, width = (int(torch.randint(low, high + 1, (), generator=generator)) for _ in range(2))
    top = int(torch.randint(0, grid - height + 1, (), generator=generator))
    left = int(torch.randint(0, grid - width + 1, (), generator=generator))
    cells = torch.zeros(grid, grid, dtype=torch.bool)
    cells[top:top + height, left:left + width] = True
    return cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1)


def _strokes(size: int, width: float, generator) -> torch.Tensor:
    """1 to 3 brush strokes, each a random walk of 3 to 6 vertices drawn with a round brush."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    pixels = torch.stack([xs.flatten(), ys.flatten()], 1)
    radius = max(0.75, width * size / 2)
    hole = torch.zeros(size * size, dtype=torch.bool)
    for _ in range(int(torch.randint(1, 4, (), generator=generator))):
        point = torch.rand(2, generator=generator) * size
        for _ in range(int(torch.randint(2, 6, (), generator=generator))):
            angle = _uniform(generator, 0, 2 * math.pi)
            length = _uniform(generator, 0.15, 0.45) * size
            end = (point + length * torch.tensor([math.cos(angle), math.sin(angle)])).clamp(0, size)
            segment = end - point
            along = ((pixels - point) @ segment / segment.dot(segment).clamp(min=1e-6)).clamp(0, 1)
            distance = (pixels - (point + along[:, None] * segment)).norm(dim=1)
            hole |= distance <= radius
            point = end
    return hole.view(size, size)


def _border(size: int, cell: int, generator) -> torch.Tensor:
    """Outpainting: keep a window of random size (40-80% of the side) and position, fill the rest."""
    grid = size // cell
    side = max(1, min(grid - 1, round(grid * _uniform(generator, 0.4, 0.8))))
    top, left = (int(torch.randint(0, grid - side + 1, (), generator=generator)) for _ in range(2))
    cells = torch.ones(grid, grid, dtype=torch.bool)
    cells[top:top + side, left:left + side] = False
    return cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1)


def mage_rate(generator: torch.Generator | None, mean: float = 0.55, std: float = 0.25,
              low: float = 0.5, high: float = 1.0) -> float:
    """One draw of MAGE's masking rate: the normal CDF inverted on [low, high]."""
    a, b = (torch.tensor((bound - mean) / std, dtype=torch.float64) for bound in (low, high))
    lower, upper = torch.special.ndtr(a), torch.special.ndtr(b)
    quantile = lower + torch.rand((), generator=generator, dtype=torch.float64) * (upper - lower)
    return float(mean + std * torch.special.ndtri(quantile))


def make_mask(spec: str, batch: int, size: int, cell: int = 1,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Hole masks of shape (batch, 1, size, size) for the mask `spec`, drawn on `cell`-pixel cells.

    Square holes and windows are aligned to the cells; random masks hide whole cells, the same
    count in every image. Every mask leaves at least one pixel to fill and one pixel known; a
    degradation's hole is the whole image.
    """
    kind, ratio = parse_task(spec)
    if is_degradation(spec):
        return torch.ones(batch, 1, size, size, dtype=torch.bool)
    if size % cell:
        raise UserError(f"image size {size} is not a multiple of the mask cell {cell}")
    if kind in ("center", "outpaint"):
        side = max(cell, round(size * ratio / cell) * cell)
        side = min(side, size - cell) if kind == "outpaint" else min(side, size - cell)
        square = _centre_square(size, side)
        hole = square if kind == "center" else ~square
        return hole.expand(batch, 1, size, size).clone()
    if kind in ("random", "mage"):
        grid = size // cell
        count = grid * grid
        rate = mage_rate(generator) if kind == "mage" else ratio
        masked = max(1, min(count - 1, round(count * rate)))
        scores = torch.rand(batch, count, generator=generator)
        patches = torch.zeros(batch, count, dtype=torch.bool)
        patches.scatter_(1, scores.argsort(dim=1)[:, :masked], True)
        patches = patches.view(batch, 1, grid, grid)
        return patches.repeat_interleave(cell, 2).repeat_interleave(cell, 3)
    holes = []
    for _ in range(batch):
        choice = kind if kind != "hybrid" else ("box", "strokes", "border")[
            int(torch.multinomial(torch.tensor([0.4, 0.4, 0.2]), 1, generator=generator))]
        if choice == "box":
            hole = _box(size, cell, ratio if kind == "box" else DEFAULTS["box"], generator)
        elif choice == "strokes":
            hole = _strokes(size, ratio if kind == "strokes" else DEFAULTS["strokes"], generator)
            if hole.all():  # keep some context, whatever the strokes covered
                hole[: size // 2] = False
        else:
            hole = _border(size, cell, generator)
        holes.append(hole)
    return torch.stack(holes).unsqueeze(1)


def apply_mask(images: torch.Tensor, hole: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """The degraded image a person sees: hole pixels replaced by a flat `fill` value."""
    return torch.where(hole, torch.full_like(images, fill), images)
