"""Is it really forgotten? The relearning probe.

Unlearning that only hides knowledge can be undone by a little fine-tuning: a few forget-class
images and a few steps bring the forgotten completions back. A model that never learnt the
classes (the retrained one) has to learn them from those few images. So each model is
fine-tuned the same way (its family's training loss, the whole generator, the same images,
steps, learning rate and seed) and its forget-test hole MSE (centre inpainting) is measured
along the way. An unlearned model whose error falls much faster than the retrained model's
still holds what it was asked to forget.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from . import engine
from .data import make_mask, stack_images, subset_per_class
from .errors import UserError, check_number
from .metrics import hole_mse
from .models import I2IModel
from .records import RunRecord, prepare_out_dir, write_json


@dataclass
class ProbeConfig:
    images: int = 16  # forget training images the attacker fine-tunes on
    steps: int = 60
    batch_size: int = 16
    lr: float = 1e-4
    eval_every: int = 15
    eval_images: int = 100  # forget test images measured at each point
    seed: int = 0

    def check(self) -> None:
        for flag in ("images", "steps", "batch_size", "eval_every", "eval_images"):
            if getattr(self, flag) < 1:
                raise UserError(f"--{flag.replace('_', '-')} must be at least 1, not {getattr(self, flag)}")
        check_number("lr", self.lr, 0, inclusive=False)


class _TaskLoss(nn.Module):
    def __init__(self, model: I2IModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        images = batch["train"]
        return self.model.task_loss(images, self.model.draw(images)), {}


def _forget_error(model: I2IModel, images: torch.Tensor, steps: int | None, seed: int) -> float:
    model.eval()
    hole = make_mask("center", len(images), model.image_size, model.mask_cell)
    with torch.no_grad():
        completed = model.complete(images, hole, torch.Generator().manual_seed(seed), steps)
    return float(hole_mse(completed, images, hole).mean())


def relearn_curve(model: I2IModel, train_images: Subset, test_images: torch.Tensor, config: ProbeConfig,
                  sampling_steps: int | None = None) -> list[dict]:
    """Forget-test hole MSE of a copy of `model` fine-tuned on `train_images`, every `eval_every` steps."""
    model = copy.deepcopy(model)
    parameters = model.freeze_all_but_generator()
    curve = [{"step": 0, "forget_hole_mse": _forget_error(model, test_images, sampling_steps, config.seed)}]

    def measure(step: int, optimizer) -> None:
        if step % config.eval_every == 0 or step == config.steps:
            curve.append({"step": step,
                          "forget_hole_mse": _forget_error(model, test_images, sampling_steps, config.seed)})
            model.train()

    optim = engine.OptimConfig(steps=config.steps, lr=config.lr, weight_decay=0.0, grad_clip=1.0)
    engine.run(_TaskLoss(model), parameters, {"train": engine.loader(train_images, config.batch_size, config.seed)},
               optim, config.seed, engine.make_accelerator(cpu=True), description="relearn", after_step=measure)
    return curve


def relearn_probe(models: dict[str, I2IModel], splits, config: ProbeConfig, out: str | Path,
                  sampling_steps: int | None = None) -> dict:
    """Run the probe on every model (e.g. original, unlearned, retrained); write relearn.json."""
    config.check()
    for model in models.values():
        model.check_steps(sampling_steps)
    generator = torch.Generator().manual_seed(config.seed)
    chosen = torch.randperm(len(splits.forget), generator=generator)[:config.images].sort().values.tolist()
    train_images = Subset(splits.forget.dataset, [splits.forget.indices[i] for i in chosen])
    per_class = max(1, config.eval_images // max(1, len(splits.forget_classes)))
    test = subset_per_class(splits.forget_test, per_class, config.seed)
    test_images = stack_images(test, config.eval_images)
    folder = prepare_out_dir(out)
    record = RunRecord("relearn", {**config.__dict__, "sampling_steps": sampling_steps})
    curves, seconds = {}, {}
    for name, model in models.items():
        started = time.perf_counter()
        curves[name] = relearn_curve(model, train_images, test_images, config, sampling_steps)
        seconds[name] = round(time.perf_counter() - started, 1)
    summary = {name: {"before": curve[0]["forget_hole_mse"], "after": curve[-1]["forget_hole_mse"],
                      "recovered": round(1 - curve[-1]["forget_hole_mse"] / curve[0]["forget_hole_mse"], 4)
                      if curve[0]["forget_hole_mse"] else None}
               for name, curve in curves.items()}
    payload = record.finish(data={**splits.info, "probe_images": [splits.forget.dataset.ids[i]
                                                                  for i in train_images.indices]
                                  if hasattr(splits.forget.dataset, "ids") else len(train_images),
                                  "test_images": len(test_images)},
                            curves=curves, summary=summary, seconds=seconds)
    write_json(folder / "relearn.json", payload)
    return payload
