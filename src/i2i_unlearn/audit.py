"""The audit trail of a deletion: `certificate.json` beside every unlearned checkpoint, and `verify`.

A certificate names what was forgotten (each forget image's id and SHA-256; for a class request
also the classes and their counts), where the retain data came from, the SHA-256 of the
original and of the unlearned checkpoint, the method, its settings and seed, library versions,
start and end times, metrics when the run was evaluated, and the SHA-256 of the original's own
certificate when the original was itself an unlearned model, so that successive deletions form
a chain.

An image's hash is that of its file for a folder dataset (the bytes the user holds), and that of
its stored uint8 pixels for a built-in set. A checkpoint's hash covers its config files and
weights (sorted by relative path), not the records written beside them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch.utils.data import Subset

from .errors import UserError

CERTIFICATE = "certificate.json"
CHECKPOINT_FILES = ("*.json", "*.safetensors")
RECORDS = {CERTIFICATE, "unlearn_record.json", "train_record.json", "metrics.json"}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_digest(folder: str | Path) -> dict:
    """SHA-256 of each config and weights file of a checkpoint folder, and one over all of them."""
    folder = Path(folder)
    files = sorted({path for pattern in CHECKPOINT_FILES for path in folder.rglob(pattern)
                    if path.name not in RECORDS})
    hashes = {str(path.relative_to(folder)): sha256_file(path) for path in files}
    combined = sha256_bytes("\n".join(f"{name} {value}" for name, value in hashes.items()).encode())
    return {"sha256": combined, "files": hashes}


def _parts(images) -> tuple:
    """(dataset, indices) of a Subset, or of a whole dataset."""
    if isinstance(images, Subset):
        return images.dataset, list(images.indices)
    return images, list(range(len(images)))


def image_digests(images) -> list[dict]:
    """Each image (a Subset or a dataset): its id and the SHA-256 of its file (folders) or stored pixels."""
    dataset, indices = _parts(images)
    entries = []
    for index in indices:
        if getattr(dataset, "_paths", None) is not None:
            digest = sha256_file(dataset._paths[index])
        elif getattr(dataset, "_cache", None) is not None:
            digest = sha256_bytes(dataset._cache[index].contiguous().numpy().tobytes())
        else:  # any other dataset: the tensor it gives, rounded to 8 bits
            image = dataset[index][0]
            digest = sha256_bytes((image * 255).round().to(torch.uint8).contiguous().numpy().tobytes())
        entries.append({"id": dataset.ids[index] if hasattr(dataset, "ids") else str(index), "sha256": digest})
    return entries


def set_digest(entries: list[dict]) -> str:
    """One hash over a set of images, independent of their order."""
    return sha256_bytes("\n".join(sorted(f"{e['id']} {e['sha256']}" for e in entries)).encode())


def _absolute(spec: str | None) -> str | None:
    """A dataset spec or file path that still names the same data from another working directory."""
    if spec is None:
        return None
    kind, sep, rest = str(spec).partition(":")
    if sep and kind in ("imagefolder", "fashion-mnist") and rest:
        return f"{kind}:{Path(rest).resolve()}"
    return spec if sep or kind in ("fashion-mnist", "emoji") else str(Path(spec).resolve())


def describe_data(splits) -> dict:
    """The forget set image by image, and the retain set by count and hash."""
    forget = image_digests(splits.forget)
    retain = image_digests(splits.retain)
    dataset, indices = _parts(splits.forget)
    labels, names = getattr(dataset, "labels", None), getattr(dataset, "class_names", None)
    counts: dict[str, int] = {}
    for index in indices if labels is not None and names is not None else []:
        counts[names[labels[index]]] = counts.get(names[labels[index]], 0) + 1
    request = {key: splits.info.get(key) for key in ("dataset", "image_size", "channels", "forget_classes",
                                                      "forget_list", "retain_classes", "retain_source", "retain_limit")}
    for key in ("dataset", "forget_list", "retain_source"):
        request[key] = _absolute(request[key])
    return {"request": request,
            "forget": {"count": len(forget), "sha256": set_digest(forget), "classes": counts, "images": forget},
            "retain": {"count": len(retain), "sha256": set_digest(retain)}}


def parent_certificate(source: Path | None) -> str | None:
    """SHA-256 of the source checkpoint's certificate, when it was itself unlearned."""
    if source is not None and (source / CERTIFICATE).is_file():
        return sha256_file(source / CERTIFICATE)
    return None


def write_certificate(folder: Path, record: dict, splits, source: Path | None, metrics: dict | None = None) -> Path:
    """Write `folder`/certificate.json for the unlearning run `record` that saved a model in `folder`."""
    from .records import write_json

    config = record["config"]
    certificate = {
        "kind": "i2i-unlearn deletion certificate", "format": 1,
        "method": config["method"], "family": config.get("family"), "seed": config["seed"], "config": config,
        "data": describe_data(splits),
        "original_checkpoint": ({"path": str(source), **checkpoint_digest(source)} if source is not None else None),
        "parent_certificate": parent_certificate(source),
        "unlearned_checkpoint": checkpoint_digest(folder),
        "versions": record["versions"], "started": record["started"], "finished": record["finished"],
        "metrics": metrics,
    }
    path = folder / CERTIFICATE
    write_json(path, certificate)
    return path


def add_metrics(folder: Path, metrics: dict, evaluation: dict) -> None:
    """Record the before/after metrics of a deletion (and how to recompute them) in its certificate."""
    from .records import write_json

    path = Path(folder) / CERTIFICATE
    certificate = json.loads(path.read_text())
    certificate["metrics"], certificate["evaluation"] = metrics, evaluation
    write_json(path, certificate)


def _load(path: Path) -> dict:
    if path.is_dir():
        path = path / CERTIFICATE
    try:
        certificate = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no certificate at {path}; pass an unlearned checkpoint folder or its certificate.json") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not valid JSON; the certificate is damaged") from None
    if not isinstance(certificate, dict) or certificate.get("kind") != "i2i-unlearn deletion certificate":
        raise UserError(f"{path} is not an i2i-unlearn deletion certificate")
    return certificate


def _splits(certificate: dict):
    from .data import make_splits

    request = certificate["data"]["request"]
    return make_splits(request["dataset"], request["image_size"], request["channels"],
                       forget_classes=request["forget_classes"] if not request["forget_list"] else None,
                       forget_list=request["forget_list"], retain_classes=request["retain_classes"],
                       retain_limit=request["retain_limit"], retain_source=request["retain_source"],
                       seed=certificate["seed"])


def reevaluate(path: str | Path, tolerance: float = 1e-6) -> list[str]:
    """Recompute the metrics a certificate records (original and unlearned model) and name every
    one that differs by more than `tolerance` (relative)."""
    from .evaluate import Evaluator, eval_sets
    from .models import load_model

    path = Path(path)
    certificate = _load(path)
    folder = path if path.is_dir() else path.parent
    if not certificate.get("metrics"):
        return ["the certificate records no metrics to recompute (it was not evaluated)"]
    how = certificate["evaluation"]
    splits = _splits(certificate)
    evaluator = Evaluator(splits, eval_sets(splits, how["eval_per_class"], how["seed"]), how["task"], how["features"],
                          how["classifier"], how["seed"], how["sampling_steps"], how["eval_per_class"])
    problems = []
    models = {"after": folder}
    if certificate.get("original_checkpoint"):
        models["before"] = Path(certificate["original_checkpoint"]["path"])
    for name, checkpoint in models.items():
        recorded = certificate["metrics"].get(name)
        if recorded is None:
            continue
        measured = evaluator(load_model(checkpoint))[0]
        for set_name, values in recorded.items():
            for metric, value in values.items():
                again = measured.get(set_name, {}).get(metric)
                if not isinstance(value, (int, float)):
                    continue
                if again is None or abs(again - value) > tolerance * max(1.0, abs(value)):
                    problems.append(f"metric {name}/{set_name}/{metric}: recorded {value}, recomputed {again}")
    return problems


def verify(path: str | Path, check_data: bool = True, notes: list[str] | None = None) -> list[str]:
    """Every mismatch between a certificate and what is on disk now, walking the chain of
    certificates back to the first original; empty when all holds. What could not be checked
    (forget images deleted since, as a deletion request may ask) goes to `notes`."""
    path = Path(path)
    certificate = _load(path)
    notes = notes if notes is not None else []
    problems = []
    folder = path if path.is_dir() else path.parent
    now = checkpoint_digest(folder)
    stored = certificate["unlearned_checkpoint"]
    for name in sorted(set(stored["files"]) | set(now["files"])):
        if stored["files"].get(name) != now["files"].get(name):
            state = "is missing" if name not in now["files"] else ("was added" if name not in stored["files"]
                                                                   else "has changed")
            problems.append(f"unlearned checkpoint: {folder / name} {state}")
    original = certificate.get("original_checkpoint")
    if original:
        source = Path(original["path"])
        if not source.is_dir():
            problems.append(f"original checkpoint {source} is not there to check")
        else:
            if checkpoint_digest(source)["sha256"] != original["sha256"]:
                problems.append(f"original checkpoint {source} has changed since the deletion")
            if parent_certificate(source) != certificate.get("parent_certificate"):
                problems.append(f"the certificate of {source} does not match the one this deletion recorded")
            elif certificate.get("parent_certificate"):
                problems += [f"earlier deletion: {problem}" for problem in verify(source, check_data, notes)]
    if check_data:
        problems += _verify_data(certificate, notes)
    return problems


def _verify_data(certificate: dict, notes: list[str]) -> list[str]:
    """Forget images re-hashed one by one by their recorded ids; the retain set as a whole."""
    from .data import load_dataset

    request = certificate["data"]["request"]
    try:
        train = load_dataset(request["dataset"], "train", request["image_size"], request["channels"])
    except UserError as exc:
        return [f"data: {request['dataset']} cannot be read again ({exc})"]
    by_id = {image_id: index for index, image_id in enumerate(getattr(train, "ids", []))}
    recorded = certificate["data"]["forget"]["images"]
    present = [entry for entry in recorded if entry["id"] in by_id]
    now = {e["id"]: e["sha256"] for e in image_digests(Subset(train, [by_id[e["id"]] for e in present]))}
    problems = [f"forget data differs from the certificate: image {entry['id']} has changed"
                for entry in present if now[entry["id"]] != entry["sha256"]]
    if len(present) < len(recorded):
        notes.append(f"{len(recorded) - len(present)} of {len(recorded)} forget images are no longer in "
                     f"{request['dataset']} (deleted since?), so only the others were re-hashed")
    try:
        splits = _splits(certificate)
    except UserError as exc:
        notes.append(f"retain data not re-checked: the request cannot be rebuilt ({exc})")
        return problems
    if set_digest(image_digests(splits.retain)) != certificate["data"]["retain"]["sha256"]:
        problems.append("retain data differs from the certificate")
    return problems
