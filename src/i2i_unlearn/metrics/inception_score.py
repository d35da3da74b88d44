"""Inception Score from class logits: exp(E_x KL(p(y|x) || p(y))), higher = sharper and more varied."""

from __future__ import annotations

import torch


def inception_score(logits: torch.Tensor, splits: int = 1) -> float:
    """The Inception Score of a set given its (N, classes) logits, averaged over `splits` chunks."""
    probabilities = logits.double().softmax(dim=1)
    scores = []
    for chunk in probabilities.chunk(splits):
        marginal = chunk.mean(dim=0, keepdim=True)
        kl = (chunk * (chunk.clamp_min(1e-12).log() - marginal.clamp_min(1e-12).log())).sum(dim=1)
        scores.append(kl.mean().exp())
    return float(torch.stack(scores).mean())
