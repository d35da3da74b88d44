"""Evaluate a model on a task, per image set: hole MSE / PSNR, FID and embedding cosine.

Every metric compares the model's completions of a set's held-out images with their
ground truth. Features of real images depend only on the images and the extractor, so a
`cache` dict can carry them from one evaluation (e.g. before unlearning) to the next.
"""

from __future__ import annotations

import hashlib

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .data import make_mask, parse_task
from .metrics import (FeatureStats, embedding_cosine, frechet_distance, get_extractor, hole_mse,
                      inception_score, psnr)
from .models import I2IModel


def _set_key(images: Dataset, extractor_name: str, batch_size: int) -> str:
    """Identifies a set's real-image features: the images, the extractor and the batching."""
    ids = [images.dataset.ids[i] for i in images.indices] if hasattr(images, "indices") else range(len(images))
    digest = hashlib.sha1("\n".join(map(str, ids)).encode()).hexdigest()
    return f"{extractor_name}:{batch_size}:{digest}"


@torch.no_grad()
def evaluate(model: I2IModel, sets: dict[str, Dataset], task: str = "center", extractor=None,
             batch_size: int = 100, seed: int = 0, cache: dict | None = None, samples: int = 8,
             progress: bool = True, keep_outputs: bool = False) -> tuple[dict, dict]:
    """Metrics and sample images for each named set.

    Returns ``(metrics, samples)``: metrics[set] = {"hole_mse", "psnr", "fid", "is", "cosine", "images"}
    ("is" only when the extractor has a classifier head); samples[set] = {"truth", "hole",
    "completed"} tensors of the first `samples` images, or of every image with `keep_outputs`
    (then also "features", the completions' features).
    """
    parse_task(task)
    extractor = extractor if extractor is not None else get_extractor()
    device = next(model.parameters()).device
    extractor = extractor.to(device)
    cache = cache if cache is not None else {}
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    metrics, examples = {}, {}
    for name, images in sets.items():
        key = _set_key(images, extractor.name, batch_size)
        real_cached = key in cache
        real_stats = cache[key][0] if real_cached else FeatureStats(extractor.dim)
        real_features = cache[key][1] if real_cached else []
        fake_stats = FeatureStats(extractor.dim)
        errors, cosines, logits, kept, kept_features = [], [], [], [], []
        loader = DataLoader(images, batch_size=batch_size, shuffle=False)
        for batch_index, (truth, _) in enumerate(tqdm(loader, desc=f"evaluate {name}", disable=not progress,
                                                      dynamic_ncols=True, mininterval=1.0)):
            truth = truth.to(device)
            hole = make_mask(task, truth.shape[0], model.image_size, model.patch_size, generator).to(device)
            completed = model.complete(truth, hole)
            fake = extractor(completed)
            class_logits = extractor.class_logits(fake)
            if class_logits is not None:
                logits.append(class_logits.cpu())
            if real_cached:
                real = real_features[batch_index].to(device)
            else:
                real = extractor(truth)
                real_stats.update(real)
                real_features.append(real.cpu())
            fake_stats.update(fake)
            errors.append(hole_mse(completed, truth, hole).cpu())
            cosines.append(embedding_cosine(fake, real).cpu())
            if keep_outputs:
                kept.append((truth.cpu(), hole.cpu(), completed.cpu()))
                kept_features.append(fake.cpu())
            elif batch_index == 0:
                examples[name] = {"truth": truth[:samples].cpu(), "hole": hole[:samples].cpu(),
                                  "completed": completed[:samples].cpu()}
        if keep_outputs:
            examples[name] = {key: torch.cat(parts) for key, parts in zip(("truth", "hole", "completed"), zip(*kept))}
            examples[name]["features"] = torch.cat(kept_features)
        cache[key] = (real_stats, real_features)
        mse = torch.cat(errors)
        metrics[name] = {"hole_mse": float(mse.mean()), "psnr": float(psnr(mse).mean()),
                         "fid": frechet_distance(real_stats, fake_stats),
                         "cosine": float(torch.cat(cosines).mean()), "images": int(mse.numel())}
        if logits:
            metrics[name]["is"] = inception_score(torch.cat(logits))
    return metrics, examples
