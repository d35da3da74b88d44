"""Structural similarity (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03,
pixel range [0, 1]. Images are reflection-padded so every pixel has a window, and the SSIM map is
averaged over all pixels and channels (the convention of torchmetrics, so values agree with it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian_window(size: int, sigma: float, channels: int) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    line = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    line = line / line.sum()
    return torch.outer(line, line).expand(channels, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM between two batches (N, C, H, W) in [0, 1], shape (N,)."""
    channels = a.shape[1]
    if min(a.shape[-2:]) <= window // 2:
        raise ValueError(f"SSIM needs images larger than {window // 2}x{window // 2} pixels")
    kernel = _gaussian_window(window, sigma, channels).to(a.device)
    pad = (window // 2,) * 4
    a, b = F.pad(a.double(), pad, mode="reflect"), F.pad(b.double(), pad, mode="reflect")

    def blur(x):
        return F.conv2d(x, kernel, groups=channels)

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = (blur(a * a) - mu_a ** 2).clamp(min=0)
    var_b = (blur(b * b) - mu_b ** 2).clamp(min=0)
    cov = blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return index.mean(dim=(1, 2, 3)).float()
