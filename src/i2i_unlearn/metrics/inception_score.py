"""Inception Score from class logits, exp(E_x KL(p(y|x) || p(y))): higher = sharper and more varied.
torchmetrics' `InceptionScore`, fed logits through `Precomputed` (see fid.py)."""

from __future__ import annotations

import warnings

import torch
from torchmetrics.image.inception import InceptionScore

from .fid import Precomputed


def inception_score(logits: torch.Tensor) -> float:
    """The Inception Score of a set given its (N, classes) logits (one split: the whole set)."""
    with warnings.catch_warnings():  # that it keeps the logits, and the spread of a single split
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        warnings.filterwarnings("ignore", message=".*degrees of freedom")
        metric = InceptionScore(feature=Precomputed(logits.shape[1]), splits=1, sync_on_compute=False)
        metric.update(logits.detach().cpu().double())
        with torch.random.fork_rng(devices=[]):  # it shuffles the set first, which one split makes irrelevant
            torch.manual_seed(0)
            mean, _ = metric.compute()
    return float(mean)
