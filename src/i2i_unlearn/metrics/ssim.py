"""Structural similarity (Wang et al. 2004) per image, by torchmetrics: Gaussian window 11x11,
sigma 1.5, K1 0.01, K2 0.03, pixel range [0, 1], the SSIM map averaged over pixels and channels."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


SIGMA = 1.5  # torchmetrics sizes the Gaussian window from it: 2 * int(3.5 * sigma + 0.5) + 1 = 11


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM between two batches (N, C, H, W) in [0, 1], shape (N,)."""
    if min(a.shape[-2:]) <= 5:  # the window's half width: reflection padding needs more pixels
        raise ValueError("SSIM needs images larger than 5x5 pixels")
    return structural_similarity_index_measure(a.double(), b.double(), gaussian_kernel=True, sigma=SIGMA,
                                               data_range=1.0, reduction="none").float()
