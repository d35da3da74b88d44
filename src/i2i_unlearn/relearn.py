"""Is it really forgotten? The relearning probe.

Unlearning that only hides knowledge can be undone by a little fine-tuning: a few forget-class
images and a few steps bring the forgotten completions back. A model that never learnt the
classes (the retrained one) has to learn them from those few images. So each model is
fine-tuned the same way (its family's training loss, the whole generator, the same images,
steps, learning rate and seed) and its forget-test hole MSE (centre inpainting, or the model's degradation) is measured
along the way. An unlearned model whose error falls much faster than the retrained model's
still holds what it was asked to forget.

Two attackers, each with a fixed seed: "default" (16 forget training images, 60 steps, lr 1e-4)
and "strong" (the worst case over lr 1e-4, 3e-4 and 1e-3, 200 steps each). A curve is summed up by
its "steps to relearn": the first measured step at which the forget error is within RELEARNED
times the original model's (before any fine-tuning); None when that never happens within the probe.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
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


RELEARNED = 1.25  # a forget error within this factor of the original model's counts as relearnt
STRONG_LRS = (1e-4, 3e-4, 1e-3)
ATTACKERS = ("default", "strong")


def attacker(name: str, seed: int = 0) -> list[ProbeConfig]:
    """The probe settings of a named attacker: one config ("default") or one per learning rate ("strong")."""
    if name == "default":
        return [ProbeConfig(seed=seed)]
    if name == "strong":
        return [ProbeConfig(steps=200, lr=lr, eval_every=20, seed=seed) for lr in STRONG_LRS]
    raise UserError(f"unknown attacker {name!r}; choose from: {', '.join(ATTACKERS)}")


def steps_to_relearn(curve: list[dict], original_error: float, factor: float = RELEARNED) -> int | None:
    """The first measured step whose forget error is within `factor` x `original_error`; None if none is."""
    for point in curve:
        if point["forget_hole_mse"] <= factor * original_error:
            return point["step"]
    return None


class _TaskLoss(nn.Module):
    def __init__(self, model: I2IModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        images = batch["train"]
        return self.model.task_loss(images, self.model.draw(images)), {}


def _forget_error(model: I2IModel, images: torch.Tensor, steps: int | None, seed: int) -> float:
    model.eval()
    hole = make_mask(model.default_task, len(images), model.image_size, model.mask_cell)
    with torch.no_grad():
        completed = model.complete(images, hole, torch.Generator().manual_seed(seed), steps)
    return float(hole_mse(completed, images, hole).mean())


def relearn_curve(model: I2IModel, train_images: Subset, test_images: torch.Tensor, config: ProbeConfig,
                  sampling_steps: int | None = None, stop_at: float | None = None) -> list[dict]:
    """Forget-test hole MSE of a copy of `model` fine-tuned on `train_images`, every `eval_every` steps
    (and after the last). With `stop_at`, the fine-tuning ends at the first measurement at or below it."""
    model = copy.deepcopy(model)
    parameters = model.freeze_all_but_generator()
    curve = [{"step": 0, "forget_hole_mse": _forget_error(model, test_images, sampling_steps, config.seed)}]
    if stop_at is not None and curve[0]["forget_hole_mse"] <= stop_at:
        return curve

    def measure(step: int, optimizer) -> bool:
        if step % config.eval_every == 0 or step == config.steps:
            curve.append({"step": step,
                          "forget_hole_mse": _forget_error(model, test_images, sampling_steps, config.seed)})
            model.train()
            return stop_at is not None and curve[-1]["forget_hole_mse"] <= stop_at
        return False

    optim = engine.OptimConfig(steps=config.steps, lr=config.lr, weight_decay=0.0, grad_clip=1.0)
    engine.run(_TaskLoss(model), parameters, {"train": engine.loader(train_images, config.batch_size, config.seed)},
               optim, config.seed, engine.make_accelerator(cpu=True), description="relearn", after_step=measure)
    return curve


def probe_sets(splits, config: ProbeConfig) -> tuple[Subset, torch.Tensor]:
    """The attacker's forget training images (`config.images`, drawn with the seed) and the forget
    test images measured along the way (at most `config.eval_images`, spread over the classes)."""
    generator = torch.Generator().manual_seed(config.seed)
    chosen = torch.randperm(len(splits.forget), generator=generator)[:config.images].sort().values.tolist()
    train_images = Subset(splits.forget.dataset, [splits.forget.indices[i] for i in chosen])
    per_class = max(1, config.eval_images // max(1, len(splits.forget_classes)))
    test = subset_per_class(splits.forget_test, per_class, config.seed)
    return train_images, stack_images(test, config.eval_images)


def relearning(models: dict[str, I2IModel], splits, attackers=ATTACKERS, sampling_steps: int | None = None,
               seed: int = 0, say=print) -> dict:
    """Every named attacker against every model (one of them named "original", the reference for
    "steps to relearn"). Per attacker: its settings and each model's steps to relearn; the default
    one also the measured steps and each model's forget-test hole MSE at them, the strong one each
    learning rate's curve as [step, error] pairs up to where it relearnt (the strongest rate runs
    first; a weaker one runs only up to the step the stronger relearnt at)."""
    for model in models.values():
        model.check_steps(sampling_steps)
    results = {}
    for name in attackers:
        configs = attacker(name, seed)
        train_images, test_images = probe_sets(splits, configs[0])
        original = (_forget_error(models["original"], test_images, sampling_steps, configs[0].seed)
                    if "original" in models else None)
        worst_case = len(configs) > 1 and original is not None
        curves, steps_needed = {}, {}
        for label, model in models.items():
            say(f"relearning probe ({name} attacker) on the {label} model ...")
            curves[label], found = {}, []
            # The strongest learning rate first, each run stopping where it relearns: once one has
            # relearnt at step s, a weaker one matters only before s (the worst case needs no more).
            for config in sorted(configs, key=lambda c: -c.lr):
                if worst_case and found:
                    config = replace(config, steps=min(found) - 1)
                    if config.steps < 1:
                        break
                stop = RELEARNED * original if worst_case else None
                curve = relearn_curve(model, train_images, test_images, config, sampling_steps, stop)
                curves[label][config.lr] = curve
                step = steps_to_relearn(curve, original) if original is not None else None
                if step is not None:
                    found.append(step)
            steps_needed[label] = min(found) if found else None
        first = next(iter(models.values()))
        used = sampling_steps if sampling_steps is not None or not first.sampler_steps else first.default_steps
        settings = {**configs[0].__dict__, "lr": [c.lr for c in configs] if len(configs) > 1 else configs[0].lr,
                    "relearned_within": RELEARNED, "sampling_steps": used,
                    "test_images": len(test_images), "train_images": len(train_images)}
        result = {"settings": settings, "original_error": None if original is None else round(original, 6),
                  "steps_to_relearn": steps_needed}
        if len(configs) == 1:
            result["steps"] = [point["step"] for point in next(iter(curves.values()))[configs[0].lr]]
            for label in models:
                result[label] = [round(point["forget_hole_mse"], 6) for point in curves[label][configs[0].lr]]
        else:  # each learning rate's curve, up to where it relearnt
            result["curves"] = {label: {f"{lr:g}": [[p["step"], round(p["forget_hole_mse"], 6)] for p in curve]
                                        for lr, curve in sorted(curves[label].items())} for label in models}
        results[name] = result
    return results


def describe(results: dict) -> list[str]:
    """One line per attacker: each model's steps to relearn."""
    lines = []
    for name, result in results.items():
        last = result["settings"]["steps"]
        parts = [f"{label} {'not within ' + str(last) + ' steps' if step is None else 'at step ' + str(step)}"
                 for label, step in result["steps_to_relearn"].items()]
        lines.append(f"relearnt (forget error within {RELEARNED:g}x the original's), {name} attacker: " + ", ".join(parts))
    return lines


def certificate_summary(results: dict, model: str = "unlearned") -> dict:
    """What a certificate records of `relearning`'s results for one model: per attacker its settings,
    the reference error, its steps to relearn (None: not within the probe) and its last error."""
    summary = {}
    for name, result in results.items():
        if "curves" in result:
            last = max((curve[-1] for curve in result["curves"][model].values()), key=lambda point: point[0])[1]
        else:
            last = result[model][-1]
        summary[name] = {"settings": result["settings"], "original_error": result["original_error"],
                         "steps_to_relearn": result["steps_to_relearn"][model], "last_error": last,
                         "retrained_steps_to_relearn": result["steps_to_relearn"].get("retrained")}
    return summary


def relearn_probe(models: dict[str, I2IModel], splits, config: ProbeConfig, out: str | Path,
                  sampling_steps: int | None = None) -> dict:
    """Run the probe on every model (e.g. original, unlearned, retrained); write relearn.json."""
    config.check()
    for model in models.values():
        model.check_steps(sampling_steps)
    train_images, test_images = probe_sets(splits, config)
    folder = prepare_out_dir(out)
    record = RunRecord("relearn", {**config.__dict__, "sampling_steps": sampling_steps})
    curves, seconds = {}, {}
    for name, model in models.items():
        started = time.perf_counter()
        curves[name] = relearn_curve(model, train_images, test_images, config, sampling_steps)
        seconds[name] = round(time.perf_counter() - started, 1)
    original = curves["original"][0]["forget_hole_mse"] if "original" in curves else None
    summary = {name: {"before": curve[0]["forget_hole_mse"], "after": curve[-1]["forget_hole_mse"],
                      "recovered": round(1 - curve[-1]["forget_hole_mse"] / curve[0]["forget_hole_mse"], 4)
                      if curve[0]["forget_hole_mse"] else None,
                      "steps_to_relearn": steps_to_relearn(curve, original) if original is not None else None}
               for name, curve in curves.items()}
    payload = record.finish(data={**splits.info, "probe_images": [splits.forget.dataset.ids[i]
                                                                  for i in train_images.indices]
                                  if hasattr(splits.forget.dataset, "ids") else len(train_images),
                                  "test_images": len(test_images)},
                            curves=curves, summary=summary, seconds=seconds)
    write_json(folder / "relearn.json", payload)
    return payload
