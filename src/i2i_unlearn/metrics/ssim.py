"""Structural similarity (Wang et al. 2004) per image, by torchmetrics: Gaussian window 11x11,
sigma 1.5, K1 0.01, K2 0.03, pixel range [0, 1], the SSIM map averaged over pixels and channels."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM between two batches (N, C, H, W) in [0, 1], shape (N,)."""
    if min(a.shape[-2:]) <= window // 2:
        raise ValueError(f"SSIM needs images larger than {window // 2}x{window // 2} pixels")
    return structural_similarity_index_measure(a.double(), b.double(), gaussian_kernel=True, sigma=sigma,
                                               kernel_size=window, data_range=1.0, reduction="none").float()
