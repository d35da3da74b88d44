"""Embedding cosine (the paper's "CLIP" score): how much each output still looks like its ground truth."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def embedding_cosine(output_features: torch.Tensor, truth_features: torch.Tensor) -> torch.Tensor:
    """Per-image cosine similarity between an output's embedding and its ground truth's, shape (N,)."""
    return F.cosine_similarity(output_features.float(), truth_features.float(), dim=1)
