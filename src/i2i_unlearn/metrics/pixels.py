"""Pixel metrics over the hole: how close a completion is to the ground truth."""

from __future__ import annotations

import torch


def hole_mse(completed: torch.Tensor, truth: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over the hole's pixels (values in [0, 1]), shape (N,)."""
    hole = hole.expand_as(truth).float()
    return ((completed - truth) ** 2 * hole).sum(dim=(1, 2, 3)) / hole.sum(dim=(1, 2, 3)).clamp(min=1)


def psnr(mse: torch.Tensor, floor: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB for pixel range [0, 1], per image."""
    return 10 * torch.log10(1.0 / mse.clamp(min=floor))
