"""Membership inference: can an attacker tell that forget images were in the training data?

A loss attack: a model tends to reconstruct images it was trained on better than unseen ones,
so a lower loss says "member". The loss is the family's own (`I2IModel.membership_scores`): the
hole error of a completion for one-pass models, the denoising loss at fixed timesteps and noise
for diffusion models. Members are forget
images from the training data, non-members held-out images of the same classes (never retain
images, which would confound membership with class). ROC AUC 0.5 = the attacker cannot tell;
the retrained model, which never saw the members, is the reference.

The calibrated attack (the offline likelihood-ratio attack of Carlini et al., S&P 2022, in its
simplest form) scores each image by how much better the model knows it than a reference model
that never trained on it: the loss under the reference minus the loss under the model. An image
that is merely easy (a plain shape every model completes well) no longer looks like a member,
so memorised images stand out. Both attacks report ROC AUC and the true-positive rate at 1%
false positives, the figure that matters when an attacker must be confident about a few people.

A deletion request has a few dozen images, so an AUC on them is uncertain by several hundredths
(about +-0.12 at 95% for 32 members and 64 non-members near 0.5): every AUC comes with a bootstrap
interval (members and non-members resampled apart), and two models compared on the same images
(after against the reference, after against before) with the interval of their difference, both
models' scores resampled together, so that what the images share cancels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..data import make_mask


def roc_auc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve for scores where higher means "positive" (scikit-learn's)."""
    from sklearn.metrics import roc_auc_score

    labels = [1] * len(positive) + [0] * len(negative)
    return float(roc_auc_score(labels, torch.cat([positive, negative]).double().numpy()))


@torch.no_grad()
def membership_scores(model, images: Dataset, task: str | None = None, seed: int = 0, batch_size: int = 200,
                      steps: int | None = None) -> torch.Tensor:
    """Per-image attack scores (higher = "member"), the family's own: minus the completion's hole
    error for one-pass models, minus the denoising loss at fixed timesteps for diffusion."""
    task = task or model.default_task
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for truth, _ in DataLoader(images, batch_size=batch_size):
        truth = truth.to(device)
        hole = make_mask(task, truth.shape[0], model.image_size, model.mask_cell, generator).to(device)
        scores.append(model.membership_scores(truth, hole, generator, steps).cpu())
    return torch.cat(scores)


def tpr_at_fpr(positive: torch.Tensor, negative: torch.Tensor, fpr: float = 0.01) -> float:
    """Share of positives caught by the best threshold whose false-positive rate is at most `fpr`
    (scores: higher means "positive"); with few negatives, at most `fpr` means none for 1%."""
    from sklearn.metrics import roc_curve

    labels = [1] * len(positive) + [0] * len(negative)
    false_rate, true_rate, _ = roc_curve(labels, torch.cat([positive, negative]).double().numpy())
    return float(true_rate[false_rate <= fpr].max())


def _wins(positive: torch.Tensor, negative: torch.Tensor) -> np.ndarray:
    """W[i, j] = 1 where positive i scores above negative j, 1/2 on a tie, else 0: the AUC is W's mean
    (the Mann-Whitney form), and the AUC of a resample is the mean of W's resampled rows and columns."""
    above = positive.double().numpy()[:, None] - negative.double().numpy()[None, :]
    return (above > 0) + 0.5 * (above == 0)


def _bootstrap(statistic, rows: int, columns: int, level: float, resamples: int, seed: int) -> list[float] | None:
    """Percentile interval of `statistic(member_indices, non_member_indices)` under scipy's bootstrap,
    members and non-members resampled apart (the two groups of an AUC are sampled independently);
    None when a group has a single image, which no resampling can vary."""
    from scipy.stats import bootstrap

    if min(rows, columns) < 2:
        return None

    result = bootstrap((np.arange(rows), np.arange(columns)), statistic, n_resamples=resamples,
                       confidence_level=level, method="percentile", vectorized=False,
                       random_state=np.random.default_rng(seed))
    return [round(float(result.confidence_interval.low), 4), round(float(result.confidence_interval.high), 4)]


def auc_interval(positive: torch.Tensor, negative: torch.Tensor, level: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> list[float] | None:
    """Bootstrap interval [low, high] of the AUC of `positive` against `negative` scores (None: one image)."""
    wins = _wins(positive, negative)
    return _bootstrap(lambda i, j: wins[np.ix_(i, j)].mean(), len(positive), len(negative), level, resamples, seed)


def auc_difference_interval(first: tuple[torch.Tensor, torch.Tensor], second: tuple[torch.Tensor, torch.Tensor],
                            level: float = 0.95, resamples: int = 2000, seed: int = 0) -> list[float] | None:
    """Bootstrap interval of AUC(first) - AUC(second), each a (members, non-members) pair of scores of the
    same images in the same order under two models; one resample of the images serves both (paired)."""
    if first[0].shape != second[0].shape or first[1].shape != second[1].shape:
        raise ValueError("both models must score the same members and non-members")
    a, b = _wins(*first), _wins(*second)
    return _bootstrap(lambda i, j: a[np.ix_(i, j)].mean() - b[np.ix_(i, j)].mean(), len(first[0]), len(first[1]),
                      level, resamples, seed)


def attack_summary(positive: torch.Tensor, negative: torch.Tensor) -> dict:
    """AUC, its 95% bootstrap interval and TPR at 1% FPR of one attack's scores on members (`positive`)
    and non-members."""
    return {"auc": round(roc_auc(positive, negative), 4), "auc_95": auc_interval(positive, negative),
            "tpr_at_1pct_fpr": round(tpr_at_fpr(positive, negative), 4)}


def attack_scores(model, members: Dataset, non_members: Dataset, reference=None, task: str | None = None,
                  seed: int = 0, steps: int | None = None, reference_scores: tuple | None = None) -> dict:
    """Each attack's (members, non-members) scores on one model: the loss attack's, and with a `reference`
    model (one that never saw the members) the calibrated one's. `reference_scores`: the reference's
    (members, non-members) scores computed before, to score many models against one reference at the
    cost of one."""
    member_scores = membership_scores(model, members, task, seed, steps=steps)
    outside_scores = membership_scores(model, non_members, task, seed, steps=steps)
    scores = {"loss": (member_scores, outside_scores)}
    if reference is not None or reference_scores is not None:
        base_members, base_outside = reference_scores or reference_pair(reference, members, non_members, task, seed,
                                                                         steps)
        scores["calibrated"] = (member_scores - base_members, outside_scores - base_outside)
    return scores


def summarise_attacks(scores: dict) -> dict:
    """`attack_summary` of each attack of `attack_scores`, with the set sizes."""
    members, non_members = scores["loss"]
    return {"members": len(members), "non_members": len(non_members),
            **{name: attack_summary(*pair) for name, pair in scores.items()}}


def membership_attacks(model, members: Dataset, non_members: Dataset, reference=None, task: str | None = None,
                       seed: int = 0, steps: int | None = None, reference_scores: tuple | None = None) -> dict:
    """Both attacks on one model, summarised (`attack_scores`, then `summarise_attacks`)."""
    return summarise_attacks(attack_scores(model, members, non_members, reference, task, seed, steps,
                                           reference_scores))


def describe_attacks(result: dict) -> str:
    """One line per attack: AUC and TPR at 1% FPR, with the set sizes."""
    lines = []
    for name, label in (("loss", "loss attack"), ("calibrated", "calibrated attack")):
        if name in result:
            interval = result[name]["auc_95"]
            shown = f" (95% interval {interval[0]:.2f}-{interval[1]:.2f})" if interval else ""
            lines.append(f"membership, {label}: AUC {result[name]['auc']:.3f}{shown}, TPR at 1% FPR "
                         f"{result[name]['tpr_at_1pct_fpr']:.3f} ({result['members']} members, "
                         f"{result['non_members']} non-members; AUC 0.5 = cannot tell)")
    return "\n".join(lines)


def calibrated_auc(member_losses: torch.Tensor, member_reference_losses: torch.Tensor,
                   outside_losses: torch.Tensor, outside_reference_losses: torch.Tensor) -> float:
    """The calibrated attack's AUC from per-image losses (the family's, minus its membership scores)
    under the model and under the reference: each image scores its reference loss minus its model loss,
    as `membership_attacks` scores it."""
    return roc_auc(member_reference_losses - member_losses, outside_reference_losses - outside_losses)


def reference_pair(reference, members: Dataset, non_members: Dataset, task: str | None = None, seed: int = 0,
                   steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference model's scores of the members and of the non-members (the calibration)."""
    return (membership_scores(reference, members, task, seed, steps=steps),
            membership_scores(reference, non_members, task, seed, steps=steps))


def membership_auc(model, members: Dataset, non_members: Dataset, task: str | None = None, seed: int = 0,
                   steps: int | None = None) -> float:
    """ROC AUC of the loss attack separating members from non-members (0.5: it cannot tell)."""
    return roc_auc(membership_scores(model, members, task, seed, steps=steps),
                   membership_scores(model, non_members, task, seed, steps=steps))
