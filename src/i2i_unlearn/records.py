"""Run records and output folders: every run writes what it did next to what it made."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import platform
import shutil
import tempfile
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from .errors import NonFiniteLoss, UserError


def check_out_dir(out: str | Path) -> Path:
    """Refuse an `out` that already holds files (or is a file), or that could not be written
    (checked now, so that a run does not train to the end and then lose it all); create nothing.
    What a killed earlier attempt at the same `out` left half-written is removed, and said."""
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UserError(f"{folder} already holds results; pass a new --out folder (nothing was overwritten)")
    check_writable(folder)
    _remove_leftovers(folder)
    return folder


def missing_parents(path: str | Path) -> tuple[Path, list[Path]]:
    """The nearest folder above `path` that exists, and the ones between (nearest to `path` first)
    that writing `path` would have to create."""
    missing, place = [], Path(path).absolute().parent
    while not place.exists() and place != place.parent:
        missing.append(place)
        place = place.parent
    return place, missing


def check_writable(folder: Path, flag: str = "--out") -> None:
    """Make and remove a temporary folder where `folder` (and `folder`.partial beside it) would go;
    refuse, naming `flag`, a place where it cannot be made."""
    place, _ = missing_parents(folder)
    if not place.is_dir():
        raise UserError(f"cannot create {flag} {folder}: {place} is not a folder; pick a writable place")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".i2i-unlearn-write-test.", dir=place))
    except OSError as exc:
        raise UserError(f"cannot write {flag} {folder}: {place}: {exc.strerror}; pick a writable place") from None


def _temporary_prefix(folder: Path) -> str:
    """The name of the temporary folders `atomic_out_dir` makes beside `folder`, up to the random part."""
    return f".{folder.name}.tmp-{platform.node()}-"


def _remove_leftovers(folder: Path) -> None:
    """Remove the temporary folders beside `folder` whose run (this host, that process id) has ended."""
    prefix = _temporary_prefix(folder)
    if not folder.parent.is_dir():
        return
    for path in folder.parent.glob(f"{glob.escape(prefix)}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if not path.is_dir() or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            print(f"i2i-unlearn: removed {path}, a half-written output of an earlier attempt", file=sys.stderr)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _distributed():
    """torch.distributed when this is one of several processes of a launch, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1 else None


def prepare_out_dir(out: str | Path) -> Path:
    """Create `out` for new results; refuse a folder that already holds files. Launched as several
    processes, every process checks before the main one creates the folder."""
    folder = check_out_dir(out)
    dist = _distributed()
    if dist is None or dist.get_rank() == 0:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # said below, by every process alike
    if dist is not None:
        dist.barrier()
    if not folder.is_dir():
        raise UserError(f"cannot create --out {folder}; pick a writable place")
    return folder


def processes() -> tuple[int, int]:
    """(this process's index, the number of processes) of a launch (torchrun, accelerate launch);
    (0, 1) for a single process."""
    dist = _distributed()
    return (dist.get_rank(), dist.get_world_size()) if dist is not None else (0, 1)


def main_process() -> bool:
    """Whether this is the process that writes and prints (the only one, unless launched as several)."""
    return processes()[0] == 0


def run_identity(config) -> dict:
    """The settings a resumed run must share with the saved one: all but `compile` (which changes
    how the step runs, not what it computes), and the speed settings only when not at their
    defaults (so a state saved before they existed still resumes)."""
    identity = {key: value for key, value in dataclasses.asdict(config).items() if key != "compile"}
    for key, default in (("settle", None), ("precision", "fp32")):
        if identity.get(key) == default:
            identity.pop(key, None)
    return identity


def versions() -> dict:
    """Versions of Python and the libraries that decide a run's numbers."""
    import accelerate
    import diffusers
    import numpy
    import torch
    import transformers

    from . import __version__

    return {"i2i_unlearn": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "diffusers": diffusers.__version__,
            "accelerate": accelerate.__version__, "numpy": numpy.__version__, "platform": platform.platform()}


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: str | Path, payload: dict) -> None:
    """Write JSON atomically: a temporary file beside `path`, then a rename (never half a file)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    os.replace(temporary, path)


@contextmanager
def failure_recorded(out: Path | None, record: "RunRecord", state: Path | None, writer: bool = True):
    """Around a run's optimisation: if its loss turns non-finite, drop the resumable state
    (resuming would only reach the same loss) and write what happened to `OUT.failed.json`."""
    try:
        yield
    except NonFiniteLoss as exc:
        if state is not None:
            shutil.rmtree(state.parent, ignore_errors=True)
        if out is None or not writer:
            raise
        path = out.with_name(out.name + ".failed.json")
        record.finish(error=str(exc))
        path.parent.mkdir(parents=True, exist_ok=True)
        record.write(path)
        raise NonFiniteLoss(f"{exc} What happened is in {path}.") from None


def partial_state(out: Path, resume: bool) -> Path:
    """Where a run writing `out` keeps its resumable state (`OUT.partial/state.pt`), checked against `resume`."""
    state = out.with_name(out.name + ".partial") / "state.pt"
    if resume and not state.parent.is_dir():
        raise UserError(f"nothing to resume: {state.parent} does not exist; run without --resume")
    if not resume and state.parent.exists():
        raise UserError(f"an interrupted run left {state.parent}; add --resume to continue it, or delete that "
                        "folder to start afresh")
    return state


@contextmanager
def atomic_out_dir(out: str | Path):
    """Yield a temporary folder beside `out`; on success it becomes `out` in one rename.

    A crash leaves no half-written `out`; if another run created `out` with files meanwhile,
    the rename fails and nothing of theirs is touched. Once `out` exists, what earlier attempts
    left beside it (`OUT.failed.json`, `OUT.partial/`) is removed.
    """
    folder = check_out_dir(out)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(prefix=f"{_temporary_prefix(folder)}{os.getpid()}-", dir=folder.parent))
    except OSError as exc:
        raise UserError(f"cannot create --out {folder}: {exc.strerror}; pick a writable place") from None
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        # Normal permissions: mkdtemp makes a private folder and safetensors private files.
        for path in [temporary, *temporary.rglob("*")]:
            os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)
        try:
            os.rename(temporary, folder)  # replaces an empty folder; refuses one with files
        except OSError:
            raise UserError(f"{folder} was filled by another run meanwhile; nothing was overwritten, pass a new "
                            "--out folder") from None
        # What earlier attempts left beside `out` is superseded: a failure record, a resumable state.
        folder.with_name(folder.name + ".failed.json").unlink(missing_ok=True)
        shutil.rmtree(folder.with_name(folder.name + ".partial"), ignore_errors=True)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)


_INVOCATION: dict | None = None  # the command line's command and flags (runconfig.invocation), set by the CLI


def set_invocation(value: dict | None) -> None:
    """What every record written from now on keeps to replay the run (`--config RECORD`); None: not a CLI run."""
    global _INVOCATION
    _INVOCATION = value


def invocation_field() -> dict:
    """{"invocation": the command and flags} of a CLI run, for a record's payload; {} otherwise."""
    return {"invocation": _INVOCATION} if _INVOCATION is not None else {}


class RunRecord:
    """Collects a run's config, data, versions and timing; `write` saves it as JSON. Written by a
    CLI run, it also holds the command's flags, so that `--config RECORD` replays it."""

    def __init__(self, kind: str, config: dict):
        self.payload = {"kind": kind, "command": sys.argv, **invocation_field(), "config": config, "versions": versions(),
                        "started": now()}
        self._start = time.perf_counter()

    def finish(self, **fields) -> dict:
        self.payload.update(fields)
        self.payload["finished"] = now()
        self.payload["seconds"] = round(time.perf_counter() - self._start, 2)
        return self.payload

    def write(self, path: str | Path) -> None:
        write_json(path, self.payload)
