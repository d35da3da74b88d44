"""Membership inference: can an attacker tell that forget images were in the training data?

A loss attack: a model tends to reconstruct images it was trained on better than unseen ones,
so a lower loss says "member". The loss is the family's own (`I2IModel.membership_scores`): the
hole error of a completion for one-pass models, the denoising loss at fixed timesteps and noise
for diffusion models. Members are forget
images from the training data, non-members held-out images of the same classes (never retain
images, which would confound membership with class). ROC AUC 0.5 = the attacker cannot tell;
the retrained model, which never saw the members, is the reference.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from ..data import make_mask


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve for scores where higher means "positive" (scikit-learn's)."""
    from sklearn.metrics import roc_auc_score

    labels = [1] * len(positive) + [0] * len(negative)
    return float(roc_auc_score(labels, torch.cat([positive, negative]).double().numpy()))


@torch.no_grad()
def membership_scores(model, images: Dataset, task: str = "center", seed: int = 0, batch_size: int = 200,
                      steps: int | None = None) -> torch.Tensor:
    """Per-image attack scores (higher = "member"), the family's own: minus the completion's hole
    error for one-pass models, minus the denoising loss at fixed timesteps for diffusion."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for truth, _ in DataLoader(images, batch_size=batch_size):
        truth = truth.to(device)
        hole = make_mask(task, truth.shape[0], model.image_size, model.mask_cell, generator).to(device)
        scores.append(model.membership_scores(truth, hole, generator, steps).cpu())
    return torch.cat(scores)


def membership_auc(model, members: Dataset, non_members: Dataset, task: str = "center", seed: int = 0,
                   steps: int | None = None) -> float:
    """ROC AUC of the loss attack separating members from non-members (0.5: it cannot tell)."""
    return roc_auc(membership_scores(model, members, task, seed, steps=steps),
                   membership_scores(model, non_members, task, seed, steps=steps))
