"""Evaluate a model on a task, per image set (retain test, forget test).

Every metric compares the model's completions of a set's held-out images with their ground
truth: hole MSE / PSNR and SSIM on pixels; FID, KID, IS and embedding cosine on the features
of a chosen extractor; and, given a classifier, how often the completions are still
recognised as their class (for the forget set: forget-class accuracy).

Features of real images depend only on the images and the extractor, so they are cached: in
memory across evaluations of one process (`cache`), and on disk across runs, keyed by the
images' content, the image size and the extractor's weights.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from .data import make_mask, membership_sets, parse_task, subset_per_class
from .errors import UserError
from .metrics import (embedding_cosine, frechet_distance, get_extractor, hole_mse,
                      inception_score, psnr)
from .metrics.kid import kernel_inception_distance
from .metrics.membership import membership_attacks, membership_auc, reference_pair
from .metrics.ssim import ssim
from .models import I2IModel
from .records import processes as launch_processes

CACHE_ENV = "I2I_UNLEARN_CACHE"


def _flatten(images: Dataset) -> tuple[Dataset, list[int]]:
    """The underlying dataset and the row indices of a (possibly nested) Subset."""
    indices = list(range(len(images)))
    while isinstance(images, Subset):
        indices = [images.indices[i] for i in indices]
        images = images.dataset
    return images, indices


def feature_key(images: Dataset, extractor) -> str:
    """Identifies real-image features: image content (or file path, size and time), size, extractor."""
    dataset, indices = _flatten(images)
    digest = hashlib.sha1(f"{extractor.cache_id}|{getattr(dataset, 'image_size', '')}|"
                          f"{getattr(dataset, 'channels', '')}".encode())
    pixels, paths = getattr(dataset, "_cache", None), getattr(dataset, "_paths", None)
    for index in indices:
        if pixels is not None:
            digest.update(pixels[index].numpy().tobytes())
        elif paths is not None:
            stat = os.stat(paths[index])
            digest.update(f"{paths[index]}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        else:
            digest.update(repr(index).encode())
    return digest.hexdigest()


def cache_folder() -> Path | None:
    """Where real-image features are kept between runs: $I2I_UNLEARN_CACHE ("off" disables), else ~/.cache."""
    setting = os.environ.get(CACHE_ENV)
    if setting == "off":
        return None
    return Path(setting) if setting else Path.home() / ".cache" / "i2i-unlearn" / "features"


def _load_cached(key: str) -> torch.Tensor | None:
    folder = cache_folder()
    if folder is None or not (folder / f"{key}.safetensors").is_file():
        return None
    try:
        return load_file(folder / f"{key}.safetensors")["features"]
    except Exception:  # a damaged cache entry is recomputed, never trusted
        return None


def _store_cached(key: str, features: torch.Tensor) -> None:
    folder = cache_folder()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f"{key}.{os.getpid()}.tmp"
        save_file({"features": features.contiguous()}, temporary)
        temporary.replace(folder / f"{key}.safetensors")
    except OSError:
        pass  # a read-only home just means no caching


@torch.no_grad()
def evaluate(model: I2IModel, sets: dict[str, Dataset], task: str | None = None, extractor=None,
             batch_size: int = 100, seed: int = 0, cache: dict | None = None, samples: int = 8,
             progress: bool = True, keep_outputs: bool = False, classifier=None,
             steps: int | None = None) -> tuple[dict, dict]:
    """Metrics and sample images for each named set.

    `task`: a mask or the model's degradation (None: `model.default_task`, the centre hole or the
    degradation it was trained for).

    Returns ``(metrics, samples)``: metrics[set] = {"hole_mse", "mse", "psnr", "ssim", "fid", "kid",
    "kid_std", "is", "cosine", "images"} ("hole_mse": the error over the pixels the model produced,
    the hole or, for a degradation, the whole image, and PSNR from it; "mse": over the whole image;
    "is" when the extractor has a classifier head, and "class_accuracy" when a `classifier` knows
    the set's classes); samples[set] = {"truth",
    "hole", "completed"} tensors of the first `samples` images, or of every image with
    `keep_outputs` (then also "features" and "real_features").

    Each set is completed once, in batches of `batch_size` images, with masks and sampler noise from
    a generator seeded with (`seed`, batch number) (`steps`: the family's sampling steps), and every
    metric is computed from those completions: two evaluations of one model give identical
    numbers. Launched as several processes (`accelerate launch`, torchrun), the processes share
    the batches out and gather what each computed, so each image counts once and the numbers are
    those of one process. (Membership inference, `membership_auc`, is not shared out: every
    process computes it whole.)
    """
    task = task or model.default_task
    model.check_task(task)
    model.check_steps(steps)
    extractor = extractor if extractor is not None else get_extractor()
    device = next(model.parameters()).device
    extractor = extractor.to(device)
    if classifier is not None:
        classifier = classifier.to(device)
    cache = cache if cache is not None else {}
    model.eval()
    rank, processes = launch_processes()
    metrics, examples = {}, {}
    for name, images in sets.items():
        key = feature_key(images, extractor)
        if key not in cache:
            stored = _load_cached(key)
            if stored is not None and stored.shape == (len(images), extractor.dim):
                cache[key] = stored
        real_all = cache.get(key)
        labels_map = None
        if classifier is not None:
            labels_map = classifier.label_map(_flatten(images)[0].class_names)
        # Batch b is process (b mod processes)'s, its draws seeded by (seed, b): each image is completed
        # once, alike however many processes share the work.
        batches = [list(range(start, min(start + batch_size, len(images)))) for start in range(0, len(images), batch_size)]
        numbers = range(rank, len(batches), processes)
        loader = DataLoader(images, batch_sampler=[batches[number] for number in numbers])
        done = []
        for number, (truth, labels) in zip(numbers, tqdm(loader, desc=f"evaluate {name}", dynamic_ncols=True,
                                                         disable=not progress or rank > 0, mininterval=1.0)):
            generator = torch.Generator().manual_seed(seed + 1_000_003 * number)
            truth = truth.to(device)
            hole = make_mask(task, truth.shape[0], model.image_size, model.mask_cell, generator).to(device)
            completed = model.complete(truth, hole, generator, steps)
            fake = extractor(completed)
            first = batches[number][0]
            real = extractor(truth) if real_all is None else real_all[first:first + len(truth)].to(device)
            part = {"number": number, "fake": fake.cpu(), "real": real.cpu(),
                    "error": hole_mse(completed, truth, hole).cpu(),
                    "whole": ((completed - truth) ** 2).flatten(1).mean(1).cpu(), "ssim": ssim(completed, truth).cpu()}
            class_logits = extractor.class_logits(fake)
            if class_logits is not None:
                part["logits"] = class_logits.cpu()
            if labels_map is not None:
                targets = labels_map[labels]
                predicted = classifier.class_logits(classifier(completed)).argmax(1).cpu()
                part["correct"] = (predicted == targets)[targets >= 0]
            if keep_outputs or number == 0:
                part["kept"] = (truth.cpu(), hole.cpu(), completed.cpu())
            done.append(part)
        if processes > 1:
            from accelerate.utils import gather_object

            done = gather_object(done)  # every process gets every batch
        done.sort(key=lambda part: part["number"])
        joined = lambda field: [part[field] for part in done if field in part]  # noqa: E731
        fake_all, real_all = torch.cat(joined("fake")).float(), torch.cat(joined("real")).float()
        errors, whole, structure, logits, correct, kept = (joined(field) for field in ("error", "whole", "ssim", "logits",
                                                                                        "correct", "kept"))
        if key not in cache:
            cache[key] = real_all
            if rank == 0:
                _store_cached(key, real_all)
        mse = torch.cat(errors)
        kid, kid_std = kernel_inception_distance(real_all, fake_all, seed=seed)
        metrics[name] = {"hole_mse": float(mse.mean()), "mse": float(torch.cat(whole).mean()),
                         "psnr": float(psnr(mse).mean()),
                         "ssim": float(torch.cat(structure).mean()), "fid": frechet_distance(real_all, fake_all),
                         "kid": kid, "kid_std": kid_std,
                         "cosine": float(embedding_cosine(fake_all, real_all).mean()), "images": int(mse.numel())}
        if logits:
            metrics[name]["is"] = inception_score(torch.cat(logits))
        if correct and torch.cat(correct).numel():
            metrics[name]["class_accuracy"] = float(torch.cat(correct).float().mean())
        parts = {part: torch.cat(tensors) for part, tensors in zip(("truth", "hole", "completed"), zip(*kept))}
        if keep_outputs:
            examples[name] = {**parts, "features": fake_all, "real_features": real_all}
        else:
            examples[name] = {part: tensor[:samples] for part, tensor in parts.items()}
    return metrics, examples


def default_classifier(dataset: str, spec: str | None = "auto"):
    """The classifier that judges class accuracy: a folder, "none", or "auto" (the bundled one for the dataset)."""
    from .metrics.classifier import BUNDLED, Classifier

    if spec in (None, "none"):
        return None
    if spec == "auto":
        name = dataset.partition(":")[0]
        return Classifier(BUNDLED[name]) if name in BUNDLED and BUNDLED[name].is_dir() else None
    return Classifier(spec)


def eval_sets(splits, per_class: int | None = 50, seed: int = 0) -> dict[str, Subset]:
    """The held-out test images evaluated per set (retain, forget): at most `per_class` of each class."""
    if per_class is not None and per_class < 2:
        raise UserError("--eval-per-class must be at least 2 (FID needs two images per set)")
    sets = {"retain": subset_per_class(splits.retain_test, per_class, seed),
            "forget": subset_per_class(splits.forget_test, per_class, seed)}
    for name, images in sets.items():
        if len(images) < 2:
            if name == "forget" and not splits.forget_classes:  # a forget list is evaluated on its own images
                raise UserError(f"the forget list has {len(images)} image; FID and KID need at least 2 images per "
                                "set: list at least 2 images to evaluate the deletion")
            classes = ", ".join(splits.forget_classes) if name == "forget" else "the retain classes"
            raise UserError(f"the {name} test set has {len(images)} image(s) ({classes}); FID and KID need at least 2 "
                            "per set: add held-out test images of those classes to the dataset")
    return sets


class Evaluator:
    """One evaluation setting applied to many models (original, unlearned, retrained): the same
    test sets, task, seed, sampler steps, feature extractor, classifier and membership sets, with
    real-image features computed once."""

    def __init__(self, splits, sets: dict[str, Dataset], task: str | None = None, features: str = "efficientnet-lite0",
                 classifier: str | None = "auto", seed: int = 0, steps: int | None = None,
                 membership_per_class: int | None = None, membership: bool = True, progress: bool = True,
                 batch_size: int = 100, members: tuple[Subset, Subset] | None = None,
                 reference: I2IModel | None = None):
        if task is not None:
            parse_task(task)
        dataset = splits.info.get("dataset", "")
        self.sets, self.task, self.seed, self.steps, self.progress = sets, task, seed, steps, progress
        self.batch_size, self.used_steps = batch_size, steps
        self.extractor = get_extractor(features, dataset)
        self.classifier = default_classifier(dataset, classifier)
        self.members = self.non_members = self.reference_scores = None
        if members is not None:  # named by the user (evaluate --members/--non-members)
            self.members, self.non_members = members
        elif membership:
            self.members, self.non_members = membership_sets(splits, membership_per_class, seed)
        self.reference = reference
        self.cache: dict = {}
        # Decode every test image once now: a broken file fails before any output folder exists.
        for images in [*sets.values(), *(s for s in (self.members, self.non_members) if s is not None)]:
            if isinstance(images, Subset) and hasattr(images.dataset, "verify"):
                images.dataset.verify(images.indices)

    def __call__(self, model: I2IModel, keep_outputs: bool = False) -> tuple[dict, dict, float | None]:
        """(metrics, samples, membership AUC or None) of `model`; see `evaluate`."""
        if model.sampler_steps:  # the steps actually used, for the record (None: a one-pass family)
            self.used_steps = self.steps if self.steps is not None else model.default_steps
        self.task = self.task or model.default_task  # the first model's: every later one is of its kind
        metrics, samples = evaluate(model, self.sets, self.task, self.extractor, seed=self.seed, cache=self.cache,
                                    keep_outputs=keep_outputs, classifier=self.classifier, steps=self.steps,
                                    progress=self.progress, batch_size=self.batch_size)
        auc = None
        if self.members is not None:
            auc = membership_auc(model, self.members, self.non_members, self.task, self.seed, steps=self.steps)
        return metrics, samples, auc

    def attacks(self, model: I2IModel) -> dict:
        """Both membership attacks on `model` (`metrics.membership.membership_attacks`); the
        calibrated one when the evaluator has a reference model, scored once for every model."""
        self.task = self.task or model.default_task
        if self.reference is not None and self.reference_scores is None:
            self.reference_scores = reference_pair(self.reference, self.members, self.non_members, self.task,
                                                   self.seed, self.steps)
        return membership_attacks(model, self.members, self.non_members, task=self.task, seed=self.seed,
                                  steps=self.steps, reference_scores=self.reference_scores)

    def describe(self) -> dict:
        """What a run record says about this evaluation."""
        info = {"task": self.task, "seed": self.seed, "features": self.extractor.name,
                "sets": {name: len(images) for name, images in self.sets.items()},
                "sampling_steps": self.used_steps,
                "batch_size": self.batch_size}
        if self.members is not None:
            info["membership_sets"] = {"members": len(self.members), "non_members": len(self.non_members)}
        return info
