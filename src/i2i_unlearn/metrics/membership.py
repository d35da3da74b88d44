"""Membership inference: can an attacker tell that forget images were in the training data?

A loss-based attack on the masked-reconstruction error: a model tends to reconstruct images it
was trained on better than unseen ones, so a lower error says "member". Members are forget
images from the training data, non-members held-out images of the same classes (never retain
images, which would confound membership with class). ROC AUC 0.5 = the attacker cannot tell;
the retrained model, which never saw the members, is the reference.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import make_mask
from .pixels import hole_mse


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve for scores where higher means "positive" (Mann-Whitney U, ties count half)."""
    scores = torch.cat([positive, negative]).double()
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    sorted_scores = scores[order]
    # average ranks over ties
    unique, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    average = ends - (counts.double() - 1) / 2
    ranks[order] = average[inverse]
    n_pos, n_neg = len(positive), len(negative)
    u = ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


@torch.no_grad()
def reconstruction_errors(model, images: Dataset, task: str = "center", seed: int = 0,
                          batch_size: int = 200) -> torch.Tensor:
    """Per-image hole MSE of the model's completions under the task's (seeded) masks."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    errors = []
    for truth, _ in DataLoader(images, batch_size=batch_size):
        truth = truth.to(device)
        hole = make_mask(task, truth.shape[0], model.image_size, model.patch_size, generator).to(device)
        errors.append(hole_mse(model.complete(truth, hole), truth, hole).cpu())
    return torch.cat(errors)


def membership_auc(model, members: Dataset, non_members: Dataset, task: str = "center", seed: int = 0) -> float:
    """ROC AUC of the loss attack (score = minus reconstruction error) separating members from non-members."""
    return roc_auc(-reconstruction_errors(model, members, task, seed),
                   -reconstruction_errors(model, non_members, task, seed))
