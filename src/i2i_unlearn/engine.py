"""The one optimisation loop that training and every unlearning method share.

It runs under Hugging Face Accelerate (one process by default; `accelerate launch` gives
many processes and GPUs with no change here). An objective is an `nn.Module` whose
forward takes a batch and returns `(loss, logs)`.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .errors import NonFiniteLoss, StopAndResume, UserError
from .records import check_writable


@dataclass
class OptimConfig:
    """Optimiser and schedule settings (AdamW, warm-up, then cosine decay or constant)."""

    steps: int
    lr: float
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 0
    schedule: str = "constant"  # or "cosine"
    grad_clip: float | None = 3.0


def lr_factor(step: int, config: OptimConfig) -> float:
    """Multiplier of the base learning rate at `step`."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


PRECISIONS = ("fp32", "bf16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise UserError(f"unknown --precision {precision!r}; use fp32 (default) or bf16")


def make_accelerator(cpu: bool = False, log_with: str | None = None, log_dir: str | Path | None = None) -> Accelerator:
    """The run's Accelerator; with `log_with` (a tracker Accelerate supports, e.g. tensorboard) it also
    logs to that tracker, in `log_dir` for the trackers that write files."""
    if log_with is None:
        return Accelerator(cpu=cpu)
    check_tracker(log_with)
    if log_dir is not None:
        check_writable(Path(log_dir), "--log-dir")
    return Accelerator(cpu=cpu, log_with=log_with, project_dir=str(log_dir) if log_dir is not None else None)


def check_tracker(name: str) -> None:
    """Refuse a tracker Accelerate does not know, or whose package is not installed, before any work."""
    import accelerate.utils
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    if name not in LOGGER_TYPE_TO_CLASS:
        raise UserError(f"--log-with {name!r} is no tracker Accelerate knows; give one of "
                        f"{', '.join(sorted(LOGGER_TYPE_TO_CLASS))}")
    if not getattr(accelerate.utils, f"is_{name}_available", lambda: True)():
        package = {"comet_ml": "comet-ml"}.get(name, name)
        raise UserError(f"--log-with {name} needs the {package} package; pip install {package}, or leave the flag out")


def track_config(accelerator: Accelerator, project: str, config: dict) -> None:
    """Start the run's trackers (if any) with its settings as hyperparameters (the scalar ones)."""
    if accelerator.log_with:
        scalars = {key: value for key, value in config.items() if isinstance(value, (bool, int, float, str))}
        accelerator.init_trackers(project, config=scalars)


def end_tracking(accelerator: Accelerator) -> None:
    """Close the run's trackers (flushing their files). Not `accelerator.end_training()`: that also ends
    the process group, which the rest of a launched run (saving, printing once) still needs."""
    for tracker in accelerator.trackers:
        tracker.finish()


class EndlessSampler(torch.utils.data.Sampler):
    """Dataset indices without end: a fresh permutation per pass, seeded by (seed, pass).

    The stream is a pure function of the seed, so a resumed run starts it at `position` (the
    number of indices already used) and draws exactly the batches an uninterrupted run would.
    A set smaller than a batch simply repeats, every batch full.
    """

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.position = size, seed, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        position = self.position
        while True:
            epoch, offset = divmod(position, self.size)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            for index in order[offset:].tolist():
                position += 1
                yield index


def loader(dataset: Dataset, batch_size: int, seed: int, workers: int = 0) -> DataLoader:
    """An endless shuffling loader of full batches (see `EndlessSampler`)."""
    # Its own generator: creating the iterator must not draw from the global random state,
    # which a resumed run restores.
    return DataLoader(dataset, batch_size=batch_size, sampler=EndlessSampler(len(dataset), seed),
                      num_workers=workers, drop_last=True, generator=torch.Generator().manual_seed(seed))


def forever(data: DataLoader) -> Iterator:
    """Batches of a loader, epoch after epoch (an endless loader already is)."""
    while True:
        yield from data


SETTLE_WINDOW = 5  # log points (50 steps at the default log_every of 10) per window of the settle test


def settled(history: list[dict], tolerance: float, terms: tuple[str, ...], window: int = SETTLE_WINDOW) -> bool:
    """Whether every logged term has settled: its mean over the last `window` log points differs
    from its mean over the `window` before by at most `tolerance` of the latter."""
    if len(history) < 2 * window:
        return False
    for term in terms:
        recent = sum(entry[term] for entry in history[-window:]) / window
        before = sum(entry[term] for entry in history[-2 * window:-window]) / window
        if abs(recent - before) > tolerance * max(abs(before), 1e-12):
            return False
    return True


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; what schedulers and container runtimes send first


def run(objective: nn.Module, parameters: list[nn.Parameter], loaders: dict[str, DataLoader],
        config: OptimConfig, seed: int, accelerator: Accelerator, description: str = "train",
        log_every: int = 10, state: Path | None = None, state_every: int = 100, resume: bool = False,
        identity: dict | None = None, after_step=None, extra_state=None, precision: str = "fp32",
        compile: bool = False, settle: float | None = None) -> list[dict]:
    """Optimise `parameters` of `objective` for `config.steps` steps; returns the logged history.

    Each step draws one batch from every loader in `loaders` and passes them to the objective
    as a dict (e.g. {"forget": ..., "retain": ...}): images only, or (images, labels) pairs
    when the objective has `uses_labels = True`.

    With `state` (a file), the run saves what it needs to continue (weights, optimiser and
    schedule, random state, position in the data, history) every `state_every` steps and when
    Ctrl-C or SIGTERM arrives (then raising `StopAndResume`); `resume` continues from that file when it
    exists. A resumed
    run ends with the same weights, bit for bit on a CPU, as one never interrupted. `identity`
    (the run's settings) must match the saved one. `after_step(step, optimizer)` is called after
    each step (e.g. to measure the model along the way); when it returns True the run stops there.
    `extra_state` (anything with state_dict / load_state_dict, e.g. that callback) is saved and
    restored with the rest.

    With `settle` (a tolerance, e.g. 0.02) the run stops once every logged term has settled
    (`settled`): the logged values are the same on every process, so all stop together.

    precision "bf16" runs the objective's forward pass under bfloat16 autocast (weights, gradients
    and optimiser state stay float32); `compile` passes the objective through `torch.compile`
    (TorchInductor), paid for by a compilation at the first step. Both are ours rather than
    Accelerate's mixed-precision and dynamo settings, which are fixed once per process and would
    forbid two runs with different settings in one process (`compare`, the tests).
    """
    check_precision(precision)
    # Each process its own random draws (masks, noise), reproducibly: the seed plus the process index.
    set_seed(seed + accelerator.process_index)
    with_labels = getattr(objective, "uses_labels", False)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    names = list(loaders)
    batch_sizes = [data.batch_size for data in loaders.values()]
    samplers = [data.sampler for data in loaders.values()]
    start, history, running = 0, [], {}
    resume = resume and state is not None and state.is_file()
    if resume:
        saved = _load_state(state, identity)
        accelerator.unwrap_model(objective).load_state_dict(saved["objective"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        start, history, running = saved["step"], saved["history"], saved["running"]
        if extra_state is not None:
            extra_state.load_state_dict(saved["extra"])
        for sampler, size in zip(samplers, batch_sizes):
            if isinstance(sampler, EndlessSampler):
                sampler.position = start * size * accelerator.num_processes
    prepared = accelerator.prepare(objective, optimizer, scheduler, *loaders.values())
    objective, optimizer, scheduler = prepared[:3]
    streams = {name: forever(data) for name, data in zip(names, prepared[3:])}
    forward = torch.compile(objective) if compile else objective
    autocast = torch.autocast(accelerator.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    if resume:
        torch.set_rng_state(saved["rng"])
        if saved.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
    objective.train()
    interrupted = []  # the numbers of the stop signals received
    previous_handlers = {}
    if state is not None and threading.current_thread() is threading.main_thread():
        previous_handlers = {number: signal.signal(number, lambda received, _: interrupted.append(received))
                             for number in STOP_SIGNALS}
    bar = tqdm(range(start, config.steps), desc=description, disable=not accelerator.is_local_main_process,
               dynamic_ncols=True, mininterval=1.0, initial=start, total=config.steps)
    try:
        for step in bar:
            batch = {name: next(stream) if with_labels else next(stream)[0] for name, stream in streams.items()}
            with autocast:
                loss, logs = forward(batch)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if config.grad_clip:
                accelerator.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            scheduler.step()
            for key, value in {"loss": loss.detach(), **logs}.items():  # summed on the device until a log point
                value = value.detach().float() if torch.is_tensor(value) else torch.tensor(float(value))
                running[key] = running.get(key, 0.0) + value
            done = step + 1
            stop = bool(after_step(done, optimizer)) if after_step is not None else False
            if stop and accelerator.num_processes > 1:  # every process stops at the same step
                stop = bool(accelerator.reduce(torch.tensor([float(stop)], device=accelerator.device), "max").item())
            if done % log_every == 0 or done == config.steps or stop:
                # One synchronisation per log point: the sums, averaged over processes.
                names_logged = list(running)
                values = accelerator.reduce(torch.stack([running[k] for k in names_logged]), "mean").tolist()
                running = dict(zip(names_logged, values))
                if not math.isfinite(running["loss"]):
                    raise NonFiniteLoss(f"the loss became {running['loss']} by step {step + 1}; no model was saved. "
                                    "Lower --lr (or --forget-alpha), keep --grad-clip on, and check the "
                                    "checkpoint's weights")
                count = log_every if done % log_every == 0 else done % log_every
                entry = {"step": done, "lr": scheduler.get_last_lr()[0],
                         **{k: round(v / count, 6) for k, v in running.items()}}
                history.append(entry)
                accelerator.log({f"train/{k}": v for k, v in entry.items() if k != "step"}, step=done)
                bar.set_postfix({k: f"{v:.4g}" for k, v in entry.items() if k not in ("step", "lr")})
                running = {}
                terms = tuple(k for k in entry if k not in ("step", "lr", "loss")) or ("loss",)
                stop = stop or (settle is not None and settled(history, settle, terms))
            if done == config.steps or stop:
                break  # finished: a late Ctrl-C changes nothing
            if state is not None and accelerator.num_processes > 1:  # every process stops at the same step
                received = float(max(interrupted, default=0))
                flag = accelerator.reduce(torch.tensor([received], device=accelerator.device), "max")
                if flag.item() and not interrupted:
                    interrupted.append(int(flag.item()))
            if state is not None and (done % state_every == 0 or interrupted):
                if accelerator.is_main_process:
                    _save_state(state, identity, done, accelerator.unwrap_model(objective), optimizer, scheduler,
                                history, running, extra_state)
                accelerator.wait_for_everyone()
            if interrupted:
                name = signal.Signals(interrupted[0]).name
                raise StopAndResume(f"stopped by {name} after step {done} of {config.steps}; the state is saved in "
                                    f"{state.parent}: run the same command with --resume to continue",
                                    interrupted[0])
    finally:
        bar.close()
        for number, handler in previous_handlers.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(number, handler)
    return history


def _save_state(path: Path, identity, step, objective, optimizer, scheduler, history, running, extra) -> None:
    """Write the resumable state atomically (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save({"identity": json.dumps(identity, sort_keys=True, default=str), "step": step,
                "objective": objective.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "history": history, "running": running,
                "extra": extra.state_dict() if extra is not None else None}, temporary)
    os.replace(temporary, path)


def _load_state(path: Path, identity) -> dict:
    try:
        saved = torch.load(path, weights_only=True)
    except Exception:  # a damaged file: torch raises several types
        raise UserError(f"the saved state {path} is damaged; delete {path.parent} and run without --resume") from None
    if saved.get("identity") != json.dumps(identity, sort_keys=True, default=str):
        raise UserError(f"the saved state in {path.parent} belongs to a run with other settings; give the same "
                        f"flags as that run, or delete {path.parent} and start afresh")
    return saved
