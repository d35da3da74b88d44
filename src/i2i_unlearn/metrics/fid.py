"""Fréchet distance between two sets of features (FID when the features are Inception's):
torchmetrics' `FrechetInceptionDistance`, which keeps float64 running sums.

Evaluation computes every image's features once (and caches real images' features on disk), then
serves them to FID, KID, IS and the cosine alike; so the torchmetrics objects here receive
features, not images, through `Precomputed`. Evaluation gathers the features of every process
before it computes a metric, so the objects must not sync across processes again
(`sync_on_compute=False`: that would count every image once per process).
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance


class Precomputed(nn.Module):
    """The identity, as a torchmetrics feature extractor for features already computed."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)) of two (N, dim) feature sets."""
    if real.shape[0] < 2 or fake.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least two samples per set")
    metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]), sync_on_compute=False)
    metric.update(real.detach().cpu().double(), real=True)
    metric.update(fake.detach().cpu().double(), real=False)
    return float(metric.compute())
