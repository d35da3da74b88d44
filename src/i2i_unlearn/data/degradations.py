"""Whole-image degradations T(x): the input of an image-to-image model that has no hole to fill.

A degradation is named by a short spec, like a mask (data/masks.py):

- ``sketch[:threshold]``: an edge map, dark lines on white: the Sobel gradient magnitude (scipy.ndimage)
  of the grey image after a light Gaussian blur, thresholded at `threshold` (default 0.3) of the
  image's largest gradient, as edges2shoes-style sketch-to-image data are made;
- ``lowres[:factor]``: the image shrunk `factor` times (default 4, area averaging) and enlarged back
  (bicubic): super-resolution;
- ``colourise``: the grey (luma, ITU-R BT.601 weights) image in every channel: colourisation, for
  colour models only;
- ``jpeg[:quality]``: the image through Pillow's JPEG encoder at `quality` (default 10): restoration.

T(x) always has the shape of x, so a model takes it where a masked family takes the masked image;
the whole image is then to be produced (its "hole" is every pixel).
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from ..errors import UserError

DEFAULTS = {"sketch": 0.3, "lowres": 4, "colourise": None, "jpeg": 10}
# The degradations a gradient passes through (a sketch thresholds, JPEG quantises: neither does).
DIFFERENTIABLE = ("lowres", "colourise")
USAGE = "sketch[:threshold], lowres[:factor], colourise or jpeg[:quality]"
LUMA = (0.299, 0.587, 0.114)


def is_degradation(spec: str | None) -> bool:
    """Whether a task spec names a whole-image degradation (not a mask)."""
    return spec is not None and str(spec).partition(":")[0] in DEFAULTS


def parse_degradation(spec: str) -> tuple[str, float | int | None]:
    """Split a degradation spec like ``lowres:4`` into its kind and parameter (checked)."""
    kind, _, value = str(spec).partition(":")
    if kind not in DEFAULTS:
        raise UserError(f"unknown degradation {spec!r}; use {USAGE}")
    if DEFAULTS[kind] is None:
        if value:
            raise UserError(f"degradation {kind!r} takes no parameter; write just {kind}")
        return kind, None
    if not value:
        return kind, DEFAULTS[kind]
    if kind == "sketch":
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not 0 < threshold < 1:  # also refuses nan
            raise UserError(f"sketch threshold in {spec!r} must be a number between 0 and 1 (exclusive), e.g. sketch:0.3")
        return kind, threshold
    low, high, example = (2, None, "lowres:4") if kind == "lowres" else (1, 95, "jpeg:10")
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        bound = f"an integer of at least {low}" if high is None else f"an integer from {low} to {high}"
        raise UserError(f"{kind} parameter in {spec!r} must be {bound}, e.g. {example}")
    return kind, number


def canonical(spec: str) -> str:
    """A degradation spec with its parameter written out (``lowres`` -> ``lowres:4``), to compare two."""
    kind, value = parse_degradation(spec)
    return kind if value is None else f"{kind}:{value:g}"


def check_degradation(spec: str, image_size: int, channels: int) -> None:
    """Refuse a degradation that cannot apply to images of this size and channel count."""
    kind, value = parse_degradation(spec)
    if kind == "lowres" and (image_size % value or image_size // value < 2):
        raise UserError(f"{spec} needs an image side divisible by {value} into at least 2 pixels; the model's is "
                        f"{image_size}: choose a factor that divides it")
    if kind == "colourise" and channels != 3:
        raise UserError("colourise turns grey images into colour ones: it needs a colour (3-channel) model and "
                        "dataset, e.g. --dataset emoji --channels 3")


def _grey(images: torch.Tensor) -> torch.Tensor:
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def _sketch(images: torch.Tensor, threshold: float) -> torch.Tensor:
    grey = _grey(images).squeeze(1).detach().cpu().double().numpy()
    lines = np.empty_like(grey)
    for index, image in enumerate(grey):
        smooth = ndimage.gaussian_filter(image, sigma=0.5)
        magnitude = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
        peak = magnitude.max()
        lines[index] = (magnitude >= threshold * peak) & (peak > 1e-6)
    return (1 - torch.from_numpy(lines).to(images)).unsqueeze(1)


def _lowres(images: torch.Tensor, factor: int) -> torch.Tensor:
    small = F.interpolate(images, scale_factor=1 / factor, mode="area")
    return F.interpolate(small, size=images.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


def _jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    pixels = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    decoded = []
    for image in pixels:
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=quality)
        decoded.append(np.asarray(Image.open(buffer).convert(picture.mode)).reshape(image.shape))
    return torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).to(images) / 255


def degrade(spec: str, images: torch.Tensor) -> torch.Tensor:
    """T(images) for the degradation `spec`: a tensor of the images' shape, values in [0, 1]."""
    kind, value = parse_degradation(spec)
    if kind == "sketch":
        degraded = _sketch(images, value)
    elif kind == "lowres":
        degraded = _lowres(images, value)
    elif kind == "colourise":
        degraded = _grey(images)
    else:
        degraded = _jpeg(images, value)
    return degraded.expand_as(images).contiguous()
