"""The one optimisation loop that training and every unlearning method share.

It runs under Hugging Face Accelerate (one process by default; `accelerate launch` gives
many processes and GPUs with no change here). An objective is an `nn.Module` whose
forward takes a batch and returns `(loss, logs)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .errors import UserError


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


def make_accelerator(cpu: bool = False) -> Accelerator:
    return Accelerator(cpu=cpu)


def loader(dataset: Dataset, batch_size: int, seed: int, workers: int = 0) -> DataLoader:
    """A shuffling loader that keeps every batch full (samples with replacement if the set is small)."""
    generator = torch.Generator().manual_seed(seed)
    if len(dataset) < batch_size:
        sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=batch_size,
                                                 generator=generator)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator,
                      num_workers=workers, drop_last=True)


def forever(data: DataLoader) -> Iterator:
    """Cycle through a loader epoch after epoch."""
    while True:
        yield from data


def run(objective: nn.Module, parameters: list[nn.Parameter], loaders: dict[str, DataLoader],
        config: OptimConfig, seed: int, accelerator: Accelerator, description: str = "train",
        log_every: int = 10) -> list[dict]:
    """Optimise `parameters` of `objective` for `config.steps` steps; returns the logged history.

    Each step draws one batch from every loader in `loaders` and passes them to the objective
    as a dict (e.g. {"forget": ..., "retain": ...}): images only, or (images, labels) pairs
    when the objective has `uses_labels = True`.
    """
    set_seed(seed)
    with_labels = getattr(objective, "uses_labels", False)
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
    names = list(loaders)
    prepared = accelerator.prepare(objective, optimizer, scheduler, *loaders.values())
    objective, optimizer, scheduler = prepared[:3]
    streams = {name: forever(data) for name, data in zip(names, prepared[3:])}
    objective.train()
    history: list[dict] = []
    running: dict[str, float] = {}
    bar = tqdm(range(config.steps), desc=description, disable=not accelerator.is_local_main_process,
               dynamic_ncols=True, mininterval=1.0)
    for step in bar:
        batch = {name: next(stream) if with_labels else next(stream)[0] for name, stream in streams.items()}
        loss, logs = objective(batch)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        if config.grad_clip:
            accelerator.clip_grad_norm_(parameters, config.grad_clip)
        optimizer.step()
        scheduler.step()
        for key, value in {"loss": loss.detach(), **logs}.items():
            running[key] = running.get(key, 0.0) + float(value)
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            if not math.isfinite(running["loss"]):
                raise UserError(f"the loss became {running['loss']} by step {step + 1}; nothing was saved. Lower "
                                "--lr (or --forget-alpha), keep --grad-clip on, and check the checkpoint's weights")
            count = log_every if (step + 1) % log_every == 0 else (step + 1) % log_every
            entry = {"step": step + 1, "lr": scheduler.get_last_lr()[0],
                     **{k: round(v / count, 6) for k, v in running.items()}}
            history.append(entry)
            bar.set_postfix({k: f"{v:.4g}" for k, v in entry.items() if k not in ("step", "lr")})
            running = {}
    bar.close()
    return history
