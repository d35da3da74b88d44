"""Forget / retain / test splits for an unlearning request.

The forget set is named by classes (all their training images) or by a file listing image
ids or paths (sample-level deletion). The retain set is the rest of the training data, a
subset of it, or a proxy dataset when the real retain data may not be kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..errors import UserError
from .datasets import ImageDataset, load_dataset


@dataclass
class Splits:
    """The four image sets of an unlearning request, plus a description for run records."""

    forget: Subset
    retain: Subset
    forget_test: Subset
    retain_test: Subset
    forget_classes: list[str]
    info: dict = field(default_factory=dict)


def _keys(dataset: ImageDataset) -> dict[str, int]:
    """Each image's id, and its resolved path for a folder dataset -> its index."""
    keys = {image_id: i for i, image_id in enumerate(dataset.ids)}
    if dataset._paths is not None:
        keys.update({str(p.resolve()): i for i, p in enumerate(dataset._paths)})
    return keys


def read_forget_list(path: str | Path, dataset: ImageDataset, test: ImageDataset | None = None) -> list[int]:
    """Indices into `dataset` of the images a forget-list file names (one id or path a line).
    `test`: the held-out split, so that a test image in the list is called what it is."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"forget list {path} not found; pass a text file with one image path or id per line")
    by_id = _keys(dataset)
    held_out = _keys(test) if test is not None else {}
    indices = []
    try:
        lines = file.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"forget list {path} is not a text file; write one image path or id per line") from None
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            key = entry if entry in by_id else str(Path(entry).resolve())
        except (ValueError, OSError):  # e.g. a NUL byte: no file can have that name
            key = None
        if key not in by_id and (entry in held_out or key in held_out):
            raise UserError(f"{path}:{number}: {entry!r} is a held-out test image of {dataset.name}, not a training "
                            "image: the model never learnt it, so there is nothing to forget; remove it from the list")
        if key not in by_id:
            raise UserError(f"{path}:{number}: {entry!r} is not a training image of {dataset.name}; "
                            f"use ids like {dataset.ids[0]!r} or paths inside the dataset")
        indices.append(by_id[key])
    return sorted(set(indices))


def stack_images(images: Dataset, limit: int | None = None) -> torch.Tensor:
    """The first `limit` images of a dataset (all of them by default) as one tensor, labels dropped."""
    count = len(images) if limit is None else min(limit, len(images))
    return torch.stack([images[i][0] for i in range(count)])


def subset_per_class(subset: Subset, per_class: int | None, seed: int = 0) -> Subset:
    """At most `per_class` images of each class of `subset`, chosen with `seed`."""
    if per_class is None:
        return subset
    labels = torch.tensor([subset.dataset.labels[i] for i in subset.indices])
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for label in labels.unique().tolist():
        rows = (labels == label).nonzero().flatten()
        rows = rows[torch.randperm(len(rows), generator=generator)[:per_class]]
        keep.extend(rows.tolist())
    return Subset(subset.dataset, [subset.indices[i] for i in sorted(keep)])


def make_splits(dataset: str, image_size: int, channels: int, forget_classes: list[str] | None = None,
                forget_list: str | None = None, retain_classes: list[str] | None = None,
                retain_limit: int | None = None, retain_source: str | None = None,
                seed: int = 0) -> Splits:
    """Build the forget, retain and held-out test sets of one unlearning request.

    - `forget_classes`: forget every training image of these classes; or `forget_list`: a
      file of image ids/paths to forget (then the forget test set is those images themselves,
      since no held-out image shows the same sample).
    - `retain_classes`: keep only these classes in the retain set (default: all others);
      `retain_limit`: a random subset of at most this many retain images;
      `retain_source`: a proxy dataset spec whose training images serve as the retain set.
    """
    if bool(forget_classes) == bool(forget_list):
        raise UserError("name the forget set with exactly one of --forget-classes or --forget-list")
    train = load_dataset(dataset, "train", image_size, channels)
    test = load_dataset(dataset, "test", image_size, channels)
    labels = torch.tensor(train.labels)
    test_labels = torch.tensor(test.labels)

    if forget_classes:
        forget_labels = sorted({train.class_index(name) for name in forget_classes})
        forget_idx = [i for i, label in enumerate(train.labels) if label in forget_labels]
        forget_test_idx = [i for i, label in enumerate(test.labels) if label in forget_labels]
        forget_test = Subset(test, forget_test_idx)
    else:
        forget_idx = read_forget_list(forget_list, train, test)
        forget_labels = []
        forget_test = Subset(train, forget_idx)
    if not forget_idx:
        raise UserError("the forget set is empty; name classes that have training images or list at least one image")
    forget_names = [train.class_names[c] for c in forget_labels]

    if retain_classes:
        retain_labels = sorted({train.class_index(name) for name in retain_classes})
        both = set(retain_labels) & set(forget_labels)
        if both:
            raise UserError("forget and retain overlap in class(es) "
                            + ", ".join(train.class_names[c] for c in sorted(both))
                            + "; remove them from --retain-classes")
    else:
        retain_labels = [c for c in range(len(train.class_names)) if c not in forget_labels]
    if not retain_labels:
        raise UserError("no class is left to retain; forget fewer classes or use --retain-source")

    forget_set = set(forget_idx)
    if retain_source:
        proxy = load_dataset(retain_source, "train", image_size, channels)
        if train._paths is not None and proxy._paths is not None:  # the same files, however the specs spell them
            forget_files = {train._paths[i].resolve() for i in forget_set}
            clash = [p for p in proxy._paths if p.resolve() in forget_files]
        else:
            clash = [i for i in range(len(proxy)) if i in forget_set] if proxy.name == train.name else []
        if clash:
            raise UserError(f"forget and retain overlap: the proxy retain source {retain_source} holds "
                            f"{len(clash)} forget images; use another dataset or --retain-classes")
        retain = Subset(proxy, list(range(len(proxy))))
    else:
        keep = torch.isin(labels, torch.tensor(retain_labels))
        retain = Subset(train, [i for i in keep.nonzero().flatten().tolist() if i not in forget_set])
    if retain_limit is not None and retain_limit < len(retain):
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(len(retain), generator=generator)[:retain_limit].sort().values
        retain = Subset(retain.dataset, [retain.indices[i] for i in chosen.tolist()])
    if len(retain) == 0:
        raise UserError("the retain set is empty; check --retain-classes, --retain-limit or --retain-source")

    forget = Subset(train, forget_idx)
    for subset in (forget, retain):  # a broken file fails here, not halfway through a run
        subset.dataset.verify(subset.indices)
    retain_test = Subset(test, torch.isin(test_labels, torch.tensor(retain_labels)).nonzero().flatten().tolist())
    info = {
        "dataset": dataset, "image_size": image_size, "channels": channels,
        "forget_classes": forget_names, "forget_list": str(forget_list) if forget_list else None,
        "retain_classes": [train.class_names[c] for c in retain_labels] if not retain_source else None,
        "retain_source": retain_source, "retain_limit": retain_limit,
        "counts": {"forget": len(forget_idx), "retain": len(retain),
                   "forget_test": len(forget_test), "retain_test": len(retain_test)},
    }
    return Splits(forget, retain, forget_test, retain_test, forget_names, info)


def hold_out_validation(splits: Splits, images: int, seed: int = 0) -> tuple[Splits, Dataset, Dataset]:
    """A small validation split for a controlled run: (splits without it, forget_val, retain_val).

    Up to `images` training images per set, chosen with `seed`, taken out of the training sets (at
    most a quarter of a set). The forget images of a forget list stay in training and serve as their
    own validation: the request names exactly those images, and each must be trained on. Test images
    are never used, so evaluation stays independent of the run's decisions.
    """
    generator = torch.Generator().manual_seed(seed)

    def part(images_set, rows: list[int]) -> Subset:
        if isinstance(images_set, Subset):  # stay one level deep, so ids and files remain reachable
            return Subset(images_set.dataset, [images_set.indices[i] for i in rows])
        return Subset(images_set, rows)

    def split(images_set, held_out: bool) -> tuple:
        order = torch.randperm(len(images_set), generator=generator).tolist()
        count = min(images, len(images_set) // 4) if held_out else 0
        if count == 0:  # too small to spare any: measured on (part of) what it trains on
            return images_set, part(images_set, sorted(order[:images]))
        return part(images_set, sorted(order[count:])), part(images_set, sorted(order[:count]))

    forget, forget_val = split(splits.forget, held_out=not splits.info.get("forget_list"))
    retain, retain_val = split(splits.retain, held_out=True)
    held = {"forget": len(splits.forget) - len(forget), "retain": len(splits.retain) - len(retain)}
    info = {**splits.info, "validation": {"forget": len(forget_val), "retain": len(retain_val),
                                          "held_out_of_training": held}}
    info["counts"] = {**info.get("counts", {}), "forget_train": len(forget), "retain_train": len(retain)}
    reduced = Splits(forget, retain, splits.forget_test, splits.retain_test, splits.forget_classes, info)
    return reduced, forget_val, retain_val
