"""Fréchet distance between two sets of features (FID when the features are Inception's).

Statistics are running sums in float64 (like torchmetrics), so features never have to be
kept and sets of any size fit in memory.
"""

from __future__ import annotations

import torch


class FeatureStats:
    """Running count, sum and sum of outer products of feature vectors."""

    def __init__(self, dim: int):
        self.count = 0
        self.total = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, features: torch.Tensor) -> None:
        features = features.detach().to("cpu", torch.float64)
        self.count += features.shape[0]
        self.total += features.sum(0)
        self.outer += features.T @ features

    def mean(self) -> torch.Tensor:
        return self.total / self.count

    def covariance(self) -> torch.Tensor:
        """Unbiased sample covariance."""
        mean = self.mean()
        return (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    """||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) is the sum of square roots of the eigenvalues of S_a S_b, which are
    real and non-negative for covariance matrices (tiny negative round-off is clipped).
    """
    if a.count < 2 or b.count < 2:
        raise ValueError("the Fréchet distance needs at least two samples per set")
    mean_a, mean_b = a.mean(), b.mean()
    cov_a, cov_b = a.covariance(), b.covariance()
    eigenvalues = torch.linalg.eigvals(cov_a @ cov_b).real.clamp(min=0)
    distance = (mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * eigenvalues.sqrt().sum()
    return float(distance)
