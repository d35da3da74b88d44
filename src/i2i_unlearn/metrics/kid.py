"""Kernel Inception Distance: unbiased MMD^2 between two feature sets with the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018). Unlike FID it has an unbiased estimator,
so it is trustworthy on the small sets unlearning evaluations often have.
"""

from __future__ import annotations

import torch


def _polynomial_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    dim = x.shape[1]
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    m, n = x.shape[0], y.shape[0]
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return within_x + within_y - 2 * k_xy.mean()


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of MMD^2 over random subsets; one exact value (std 0) when both sets fit in a subset."""
    real, fake = real.double().cpu(), fake.double().cpu()
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("KID needs at least two samples per set")
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size == real.shape[0] == fake.shape[0]:
        return float(_polynomial_mmd(real, fake)), 0.0
    generator = torch.Generator().manual_seed(seed)
    values = torch.stack([
        _polynomial_mmd(real[torch.randperm(real.shape[0], generator=generator)[:size]],
                        fake[torch.randperm(fake.shape[0], generator=generator)[:size]])
        for _ in range(subsets)])
    return float(values.mean()), float(values.std())
