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


def _list_entries(path: str | Path, what: str) -> list[tuple[int, str]]:
    """(line number, entry) of an image list file: one id or path a line, blank lines and # comments skipped."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{what} {path} not found; pass a text file with one image path or id per line")
    try:
        lines = file.read_text().splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{what} {path} is not a text file; write one image path or id per line") from None
    return [(number, line.strip()) for number, line in enumerate(lines, 1)
            if line.strip() and not line.strip().startswith("#")]


def _lookup(entry: str, keys: dict[str, int]) -> int | None:
    """The index `keys` gives an entry, by id or by resolved path; None when it names no image there."""
    if entry in keys:
        return keys[entry]
    try:
        return keys.get(str(Path(entry).resolve()))
    except (ValueError, OSError):  # e.g. a NUL byte: no file can have that name
        return None


def read_forget_list(path: str | Path, dataset: ImageDataset, test: ImageDataset | None = None,
                     what: str = "forget list") -> list[int]:
    """Indices into `dataset` of the images a forget-list file names (one id or path a line).
    `test`: the held-out split, so that a test image in the list is called what it is; `what`: the
    list's name in messages (an image list to memorise is read the same way)."""
    by_id = _keys(dataset)
    held_out = _keys(test) if test is not None else {}
    indices = []
    for number, entry in _list_entries(path, what):
        index = _lookup(entry, by_id)
        if index is None and _lookup(entry, held_out) is not None:
            why = ("the model never learnt it, so there is nothing to forget" if what == "forget list"
                   else "only training images can be trained on")
            raise UserError(f"{path}:{number}: {entry!r} is a held-out test image of {dataset.name}, not a training "
                            f"image: {why}; remove it from the list")
        if index is None:
            raise UserError(f"{path}:{number}: {entry!r} is not a training image of {dataset.name}; "
                            f"use ids like {dataset.ids[0]!r} or paths inside the dataset")
        indices.append(index)
    return sorted(set(indices))


def read_membership_lists(members: str | Path, non_members: str | Path, train: ImageDataset,
                          test: ImageDataset) -> tuple[Subset, Subset]:
    """The members (training images) and non-members (held-out test images) two list files name.

    Refused: an entry of the wrong split, an empty list, and a non-member whose pixels equal a
    member's (a duplicate across the splits would be scored as both)."""
    sets = []
    for path, dataset, role, split in ((members, train, "members", "training"),
                                       (non_members, test, "non-members", "held-out test")):
        keys = _keys(dataset)
        indices = []
        for number, entry in _list_entries(path, f"{role} list"):
            index = _lookup(entry, keys)
            if index is None:
                raise UserError(f"{path}:{number}: {entry!r} is not a {split} image of {dataset.name}; {role} must "
                                f"be {split} images (ids like {dataset.ids[0]!r} or paths inside the dataset)")
            indices.append(index)
        if not indices:
            raise UserError(f"the {role} list {path} names no image; list at least one")
        sets.append(Subset(dataset, sorted(set(indices))))
    check_disjoint(*sets)
    return sets[0], sets[1]


def pixel_key(image: torch.Tensor) -> bytes:
    """An image's pixels as bytes (8-bit), to find exact copies."""
    return (image * 255).round().to(torch.uint8).numpy().tobytes()


def membership_sets(splits: Splits, per_class: int | None = None, seed: int = 0,
                    per_member: int = 1) -> tuple[Subset, Subset]:
    """Members (forget images from the training data) and non-members (held-out test images of the
    same classes, never retain images, never a copy of a member's pixels), as many of each per
    class, at most `per_class`; `per_member` non-members per member where the test split has them.
    The non-members are also what "images like the forget images that the model never saw" means
    to a controlled run on a forget list."""
    train, test = splits.forget.dataset, splits.retain_test.dataset
    generator = torch.Generator().manual_seed(seed)
    copies = {pixel_key(train[i][0]) for i in splits.forget.indices}
    members, non_members = [], []
    for label in sorted({train.labels[i] for i in splits.forget.indices}):
        inside = [i for i in splits.forget.indices if train.labels[i] == label]
        outside = [i for i, other in enumerate(test.labels) if other == label and pixel_key(test[i][0]) not in copies]
        count = min(len(inside), len(outside), per_class or len(inside))
        members += [inside[j] for j in torch.randperm(len(inside), generator=generator)[:count].tolist()]
        wanted = min(len(outside), count * per_member)
        non_members += [outside[j] for j in torch.randperm(len(outside), generator=generator)[:wanted].tolist()]
    return Subset(train, sorted(members)), Subset(test, sorted(non_members))


def check_disjoint(members: Subset, non_members: Subset) -> None:
    """Refuse a non-member that is a member: the same image, or an exact copy of its pixels."""
    ids = {members.dataset.ids[i] for i in members.indices} if members.dataset is non_members.dataset else set()
    copies = {pixel_key(members.dataset[i][0]): members.dataset.ids[i] for i in members.indices}
    for i in non_members.indices:
        image_id = non_members.dataset.ids[i]
        twin = image_id if image_id in ids else copies.get(pixel_key(non_members.dataset[i][0]))
        if twin is not None:
            raise UserError(f"non-member {image_id!r} is the member {twin!r} (same image or same pixels); "
                            "members and non-members must not overlap: remove it from one list")


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


def exclude_from_retain(splits: Splits, ids: list[str]) -> Splits:
    """`splits` without the images `ids` names in its retain set (images earlier deletions removed,
    which a later request's retain set must not bring back); `splits` itself when none is there."""
    dataset = splits.retain.dataset
    drop = set(ids)
    keep = [i for i in splits.retain.indices if dataset.ids[i] not in drop] if drop and hasattr(dataset, "ids") \
        else splits.retain.indices
    if len(keep) == len(splits.retain.indices):
        return splits
    if not keep:
        raise UserError("every retain image was deleted by an earlier request of this model's chain; "
                        "pass a --retain-source")
    info = {**splits.info, "retain_excludes": sorted(drop & {dataset.ids[i] for i in splits.retain.indices}),
            "counts": {**splits.info.get("counts", {}), "retain": len(keep)}}
    return Splits(splits.forget, Subset(dataset, keep), splits.forget_test, splits.retain_test,
                  splits.forget_classes, info)


def emphasise_in_retain(splits: Splits, ids: list[str], share: float) -> Splits:
    """`splits` whose retain set repeats the images `ids` names until they make about `share` of it:
    the retain set as the model was trained on it, when training over-represented some images (e.g.
    `memorise`'s listed images). Without it the retain term almost never sees them, and forgetting
    look-alike images damages exactly these. `splits` itself when none of them is retained."""
    dataset = splits.retain.dataset
    wanted = set(ids)
    chosen = [i for i in splits.retain.indices if dataset.ids[i] in wanted] if hasattr(dataset, "ids") else []
    if not chosen or share <= 0:
        return splits
    others = len(splits.retain.indices) - len(chosen)
    repeats = max(1, round(share * others / ((1 - share) * len(chosen))))
    retain = Subset(dataset, list(splits.retain.indices) + chosen * (repeats - 1))
    info = {**splits.info, "retain_emphasis": {"images": sorted(dataset.ids[i] for i in chosen), "repeats": repeats,
                                               "share": round(share, 4)},
            "counts": {**splits.info.get("counts", {}), "retain": len(retain)}}
    return Splits(splits.forget, retain, splits.forget_test, splits.retain_test, splits.forget_classes, info)


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
