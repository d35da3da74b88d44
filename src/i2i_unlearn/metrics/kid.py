"""Kernel Inception Distance: unbiased MMD^2 between two feature sets with the cubic polynomial
kernel k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018), by torchmetrics' `KernelInceptionDistance`
(features in through `Precomputed`, see fid.py). Unlike FID it has an unbiased estimator, so it is
trustworthy on the small sets unlearning evaluations often have.
"""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.kid import KernelInceptionDistance

from .fid import Precomputed


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000,
                              subsets: int = 100, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of MMD^2 over `subsets` random subsets of `subset_size` (seeded by `seed`);
    one exact value (std 0) when both sets fit in a subset."""
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("KID needs at least two samples per set")
    size = min(subset_size, real.shape[0], fake.shape[0])
    exact = size == real.shape[0] == fake.shape[0]  # every subset would be the whole set
    with warnings.catch_warnings():  # that it keeps the features: evaluation holds them anyway
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=1 if exact else subsets,
                                         subset_size=size, sync_on_compute=False)
    metric.update(real.detach().cpu().double(), real=True)
    metric.update(fake.detach().cpu().double(), real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws the subsets from the global generator
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), 0.0 if exact else float(std)
