"""Pictures: sample grids of ground truth / masked input / completions."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .data import apply_mask


def _to_pil(images: torch.Tensor, scale: int) -> list[Image.Image]:
    pictures = []
    for image in images:
        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        mode = "L" if array.shape[2] == 1 else "RGB"
        picture = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode).convert("RGB")
        pictures.append(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST))
    return pictures


def sample_grid(sections: list[tuple[str, list[tuple[str, torch.Tensor]]]], path: str | Path,
                scale: int = 3, gap: int = 4) -> None:
    """Save a labelled grid: per section (e.g. "retain"), one row per (label, images) pair."""
    label_width = 150
    rows = [(f"{section}: {label}", images) for section, pairs in sections for label, images in pairs]
    columns = max(len(images) for _, images in rows)
    cell = rows[0][1].shape[-1] * scale
    width = label_width + columns * (cell + gap)
    height = len(rows) * (cell + gap) + gap * 2 * len(sections)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = gap
    previous = None
    for title, images in rows:
        section = title.split(":")[0]
        if previous is not None and section != previous:
            y += gap * 2
        previous = section
        draw.text((4, y + cell // 2 - 6), title, fill="black")
        for column, picture in enumerate(_to_pil(images, scale)):
            canvas.paste(picture, (label_width + column * (cell + gap), y))
        y += cell + gap
    canvas.save(path)


def completion_rows(truth: torch.Tensor, hole: torch.Tensor, completions: dict[str, torch.Tensor]):
    """The rows of one section: ground truth, masked input, then each model's completion."""
    return [("ground truth", truth), ("masked input", apply_mask(truth, hole)),
            *[(label, images) for label, images in completions.items()]]
