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

The certificate is sealed (format 2, docs/certificates.md): `field_digests` holds the SHA-256 of
each field's canonical JSON (one level into dict fields, e.g. `config.lr`), `digest` the SHA-256
of the canonical JSON of everything but `digest` and `signature`; `verify` recomputes both and
names the field that changed. A child certificate links to its parent by the parent's digest.
With a signing key (Ed25519, PEM), `signature` holds the signature of the same canonical bytes
and the public key is written beside the certificate as certificate.pub.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import torch
from torch.utils.data import Subset

from .errors import UserError

CERTIFICATE = "certificate.json"
PUBLIC_KEY = "certificate.pub"
FORMAT = 2
SEAL_FIELDS = ("digest", "signature")  # the fields the digest does not cover
CHECKPOINT_FILES = ("*.json", "*.safetensors")
RECORDS = {CERTIFICATE, PUBLIC_KEY, "unlearn_record.json", "train_record.json", "metrics.json"}


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
    for key in ("retain_excludes", "retain_emphasis"):  # what earlier deletions and the training mix changed
        if splits.info.get(key):
            request[key] = splits.info[key]
    for key in ("dataset", "forget_list", "retain_source"):
        request[key] = _absolute(request[key])
    return {"request": request,
            "forget": {"count": len(forget), "sha256": set_digest(forget), "classes": counts, "images": forget},
            "retain": {"count": len(retain), "sha256": set_digest(retain)}}


# -- sealing: digest and signature ---------------------------------------------------------------
def canonical(value) -> bytes:
    """The bytes a digest and a signature cover: JSON with sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _body(certificate: dict) -> dict:
    return {key: value for key, value in certificate.items() if key not in SEAL_FIELDS}


def field_digests(body: dict) -> dict[str, str]:
    """SHA-256 of each field's canonical JSON; a non-empty dict field per key (`config.lr`)."""
    digests = {}
    for key, value in body.items():
        if key == "field_digests":
            continue
        if isinstance(value, dict) and value:
            digests.update({f"{key}.{inner}": sha256_bytes(canonical(item)) for inner, item in value.items()})
        else:
            digests[key] = sha256_bytes(canonical(value))
    return digests


def load_signing_key(path: str | Path):
    """An Ed25519 private key from a PEM file (unencrypted PKCS#8, as `openssl genpkey -algorithm
    ed25519` writes it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = _read_key(path, lambda data: load_pem_private_key(data, password=None), "private")
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"--sign-key {path} is not an Ed25519 key; make one with "
                        "'openssl genpkey -algorithm ed25519 -out key.pem'")
    return key


def load_public_key(path: str | Path):
    """An Ed25519 public key from a PEM file (what certificate.pub holds)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = _read_key(path, load_pem_public_key, "public")
    if not isinstance(key, Ed25519PublicKey):
        raise UserError(f"{path} is not an Ed25519 public key; pass the certificate.pub of your signing key")
    return key


def _read_key(path, parse, kind: str):
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the {kind} key {path}: {exc.strerror or exc}") from None
    try:
        return parse(data)
    except (ValueError, TypeError) as exc:  # not PEM, encrypted, or another kind of key
        raise UserError(f"{path} is not an unencrypted PEM {kind} key ({str(exc).splitlines()[0]})") from None


def _public_pem(public_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(public_key) -> str:
    """SHA-256 of the raw 32-byte Ed25519 public key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return sha256_bytes(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def seal(certificate: dict, key=None) -> dict:
    """The certificate with its field digests, digest and (with `key`) signature made afresh."""
    body = json.loads(json.dumps(_body(certificate), default=str))  # exactly what the file will hold
    body["format"] = FORMAT
    body["field_digests"] = field_digests(body)
    sealed = {**body, "digest": sha256_bytes(canonical(body))}
    if key is not None:
        sealed["signature"] = {"algorithm": "Ed25519", "key_sha256": key_fingerprint(key.public_key()),
                               "value": base64.b64encode(key.sign(canonical(body))).decode()}
    return sealed


def _write_sealed(folder: Path, certificate: dict, key) -> Path:
    from .records import write_json

    path = folder / CERTIFICATE
    write_json(path, seal(certificate, key))
    if key is not None:
        (folder / PUBLIC_KEY).write_bytes(_public_pem(key.public_key()))
    return path


def certificate_digest(certificate: dict) -> str:
    """The digest of a certificate's content as it is now (whatever its `digest` field says)."""
    return sha256_bytes(canonical(_body(certificate)))


def parent_certificate(source: Path | None) -> str | None:
    """The link to the source checkpoint's certificate, when it was itself unlearned: its digest
    (format 2), or the SHA-256 of its file (format 1, which had no digest)."""
    if source is None or not (source / CERTIFICATE).is_file():
        return None
    try:
        parent = json.loads((source / CERTIFICATE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        parent = None
    if isinstance(parent, dict) and ("digest" in parent or "field_digests" in parent):  # sealed (format 2)
        return certificate_digest(parent)
    return sha256_file(source / CERTIFICATE)


def check_seal(certificate: dict, where: str, public_key=None, key_file: Path | None = None,
               notes: list[str] | None = None, earlier: bool = False) -> list[str]:
    """Every field of a certificate changed since it was sealed, and a signature that does not hold.
    `public_key`: the key the signature must be made with (the organisation's); without it the
    signature is checked against the key beside the certificate (`key_file`), which proves only
    that the two agree. `earlier`: a certificate further down a chain, already bound by the link
    the next one recorded, so that a missing seal or signature there is a note, not a mismatch."""
    notes = notes if notes is not None else []
    if "digest" not in certificate and "field_digests" not in certificate:  # whatever its "format" says
        if not earlier:
            return [f"{where} has no digest of its own content (a format 1 certificate, or its seal was removed), "
                    "so its fields cannot be checked"]
        notes.append(f"{where} has no digest of its own content (format 1); the link to it was checked")
        return []
    body = _body(certificate)
    stored, now = certificate.get("field_digests") or {}, field_digests(body)
    problems = [f"{where}: field {name} has " + ("been removed" if name not in now else "been added"
                                                 if name not in stored else "changed") + " since it was sealed"
                for name in sorted(set(stored) | set(now)) if stored.get(name) != now.get(name)]
    if not problems and certificate.get("digest") != certificate_digest(certificate):
        problems.append(f"{where}: its digest does not match its content (the digest or field_digests was edited)")
    signature = certificate.get("signature")
    if signature is None:
        if public_key is not None and not earlier:
            problems.append(f"{where} is not signed, but --public-key asks for a signature")
        elif public_key is not None:
            notes.append(f"{where} is not signed; only its digest was checked")
        return problems
    key = public_key
    if key is None:
        if key_file is None or not key_file.is_file():
            return problems + [f"{where} is signed, but its public key {key_file} is missing; pass --public-key"]
        try:
            key = load_public_key(key_file)
        except UserError as exc:
            return problems + [f"{where} is signed, but the key beside it cannot be used: {exc}"]
        notes.append(f"{where}: signature checked with the key beside it (SHA-256 {key_fingerprint(key)[:16]}...); "
                     "pass --public-key to check that it is your organisation's")
    from cryptography.exceptions import InvalidSignature

    try:
        key.verify(base64.b64decode(signature.get("value", ""), validate=True), canonical(body))
    except (InvalidSignature, ValueError, TypeError):
        holder = "the given --public-key" if public_key is not None else f"the key in {key_file}"
        problems.append(f"{where}: the signature does not hold for {holder}"
                        + (" (signed by another key)" if signature.get("key_sha256") != key_fingerprint(key) else ""))
    return problems


def chain(source: str | Path | None) -> list[tuple[Path, dict | None]]:
    """`source` and the checkpoints its certificates were unlearned from, newest first, each with its
    certificate, to the first original (a folder without a certificate, paired with None)."""
    links: list[tuple[Path, dict | None]] = []
    folder = Path(source).resolve() if source is not None else None
    while folder is not None and folder not in (seen for seen, _ in links) and folder.is_dir():
        certificate = _load(folder / CERTIFICATE) if (folder / CERTIFICATE).is_file() else None
        links.append((folder, certificate))
        original = (certificate or {}).get("original_checkpoint") or {}
        folder = Path(original["path"]) if original.get("path") else None
    return links


def earlier_deletions(links: list[tuple[Path, dict | None]], dataset: str) -> list[str]:
    """Ids of every image of `dataset` that the certificates of a `chain` deleted (none for a
    checkpoint that was never unlearned): a later request must not retain them again."""
    ids: set[str] = set()
    for _, certificate in links:
        if certificate is not None and certificate["data"]["request"].get("dataset") == _absolute(dataset):
            ids.update(entry["id"] for entry in certificate["data"]["forget"].get("images", []) if "id" in entry)
    return sorted(ids)


def write_certificate(folder: Path, record: dict, splits, source: Path | None, metrics: dict | None = None,
                      key=None, calibration: Path | None = None) -> Path:
    """Write `folder`/certificate.json for the unlearning run `record` that saved a model in `folder`,
    sealed (and signed with `key`, an Ed25519 private key); `calibration`: the model a forget list's
    deletion aimed at (never trained on the listed images), recorded with its digest."""
    config = record["config"]
    certificate = {
        "kind": "i2i-unlearn deletion certificate", "format": FORMAT,
        "method": config["method"], "family": config.get("family"), "seed": config["seed"], "config": config,
        "data": describe_data(splits),
        "original_checkpoint": ({"path": str(source), **checkpoint_digest(source)} if source is not None else None),
        "parent_certificate": parent_certificate(source),
        **({"calibration_checkpoint": {"path": str(calibration), **checkpoint_digest(calibration)}}
           if calibration is not None else {}),
        "unlearned_checkpoint": checkpoint_digest(folder),
        "versions": record["versions"], "started": record["started"], "finished": record["finished"],
        "metrics": metrics,
    }
    return _write_sealed(folder, certificate, key)


def add_metrics(folder: Path, metrics: dict, evaluation: dict, key=None, relearning: dict | None = None,
                membership: dict | None = None) -> None:
    """Record the before/after metrics of a deletion (and how to recompute them) in its certificate,
    sealed again (and signed again with `key`); `relearning`: the relearning probe's summary of the
    unlearned model per attacker (relearn.certificate_summary); `membership`: the membership attacks
    on the deleted (and kept) images before and after."""
    path = Path(folder) / CERTIFICATE
    certificate = json.loads(path.read_text())
    problems = check_seal(certificate, str(path), key_file=Path(folder) / PUBLIC_KEY)
    if problems:  # never seal again what changed since it was sealed
        raise UserError(f"{problems[0]}; the metrics were not added")
    if certificate.get("signature") is not None and key is None:
        raise UserError(f"{path} is signed; pass its signing key to add metrics, or they would drop the signature")
    certificate["metrics"], certificate["evaluation"] = metrics, evaluation
    if relearning is not None:
        certificate["relearning"] = relearning
    if membership is not None:
        certificate["membership"] = membership
    _write_sealed(Path(folder), certificate, key)
    if (Path(folder) / "unlearn_record.json").is_file():
        from .cards import write_unlearn_card

        write_unlearn_card(Path(folder))  # the card shows the metrics and the new digest


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
    for field, kind in (("format", int), ("digest", str), ("field_digests", dict), ("signature", dict)):
        if field in certificate and not isinstance(certificate[field], kind):
            raise UserError(f"{path} has no valid field {field}; the certificate is damaged")
    for field, inner in (("unlearned_checkpoint", "files"), ("data", "request"), ("data", "forget"),
                         ("data", "retain"), ("config", None)):
        value = certificate.get(field)
        if not isinstance(value, dict) or (inner is not None and not isinstance(value.get(inner), dict)):
            name = field if not isinstance(value, dict) else f"{field}.{inner}"
            raise UserError(f"{path} has no valid field {name}; the certificate is damaged")
    return certificate


def _splits(certificate: dict):
    from .data import emphasise_in_retain, exclude_from_retain, make_splits

    request = certificate["data"]["request"]
    splits = make_splits(request["dataset"], request["image_size"], request["channels"],
                         forget_classes=request["forget_classes"] if not request["forget_list"] else None,
                         forget_list=request["forget_list"], retain_classes=request["retain_classes"],
                         retain_limit=request["retain_limit"], retain_source=request["retain_source"],
                         seed=certificate["seed"])
    splits = exclude_from_retain(splits, request.get("retain_excludes") or [])
    emphasis = request.get("retain_emphasis")
    if emphasis:
        splits = emphasise_in_retain(splits, emphasis["images"], emphasis["share"])
    return splits


def reevaluate(path: str | Path, tolerance: float = 1e-6, notes: list[str] | None = None) -> list[str]:
    """Recompute the metrics a certificate records (original and unlearned model) and name every
    one that differs by more than `tolerance` (relative). A certificate with no metrics is a note."""
    from .evaluate import Evaluator, eval_sets
    from .models import load_model

    path = Path(path)
    certificate = _load(path)
    folder = path if path.is_dir() else path.parent
    if not certificate.get("metrics"):
        if notes is not None:
            notes.append("the certificate records no metrics (the run was not evaluated), so none were recomputed")
        return []
    how = certificate["evaluation"]
    splits = _splits(certificate)
    evaluator = Evaluator(splits, eval_sets(splits, how["eval_per_class"], how["seed"]), how["task"], how["features"],
                          how["classifier"], how["seed"], how["sampling_steps"], how["eval_per_class"],
                          batch_size=how.get("batch_size", 100))
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


def verify(path: str | Path, check_data: bool = True, notes: list[str] | None = None,
           public_key=None, earlier: bool = False) -> list[str]:
    """Every mismatch between a certificate and what is on disk now, walking the chain of
    certificates back to the first original; empty when all holds: the certificate's own fields
    (its seal), its signature (against `public_key` when given), the checkpoints and the data.
    What could not be checked (forget images deleted since, as a deletion request may ask) goes
    to `notes`. `earlier`: a certificate further down the chain."""
    path = Path(path)
    certificate = _load(path)
    notes = notes if notes is not None else []
    folder = path if path.is_dir() else path.parent
    problems = check_seal(certificate, f"certificate {folder / CERTIFICATE}", public_key, folder / PUBLIC_KEY, notes,
                          earlier=earlier)
    now = checkpoint_digest(folder)
    stored = certificate["unlearned_checkpoint"]
    for name in sorted(set(stored["files"]) | set(now["files"])):
        if stored["files"].get(name) != now["files"].get(name):
            state = "is missing" if name not in now["files"] else ("was added" if name not in stored["files"]
                                                                   else "has changed")
            problems.append(f"unlearned checkpoint: {folder / name} {state}")
    original = certificate.get("original_checkpoint")
    if original:
        problems += _recorded_checkpoint_problems("original", original)
        source = Path(original["path"])
        if source.is_dir():
            if parent_certificate(source) != certificate.get("parent_certificate"):
                problems.append(f"the certificate of {source} does not match the one this deletion recorded")
            elif certificate.get("parent_certificate"):
                problems += [f"earlier deletion: {problem}"
                             for problem in verify(source, check_data, notes, public_key, earlier=True)]
    calibration = certificate.get("calibration_checkpoint")  # what a forget list's deletion aimed at
    if calibration:
        problems += _recorded_checkpoint_problems("calibration", calibration)
    if check_data:
        problems += _verify_data(certificate, notes)
    return problems


def _recorded_checkpoint_problems(kind: str, recorded: dict) -> list[str]:
    """A checkpoint a certificate recorded (its path and digest) against what is on disk now."""
    source = Path(recorded["path"])
    if not source.is_dir():
        return [f"{kind} checkpoint {source} is not there to check"]
    if checkpoint_digest(source)["sha256"] != recorded["sha256"]:
        return [f"{kind} checkpoint {source} has changed since the deletion"]
    return []


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
