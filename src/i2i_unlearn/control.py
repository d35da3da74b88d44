"""Controllable forgetting: the user sets a retain budget, the run forgets as far as it allows.

Every `check_every` steps the run measures the model on a small validation split held out of
the training data (`data.splits.hold_out_validation`; never the test images evaluation reports
on): the hole error of its completions (the evaluation task, fixed masks and sampler noise, so
two measurements differ only by the weights) and the family's embedding distances.

- Budget: the retain validation error may rise by at most `retain_budget` (relative, default 5%).
- Target: the forget validation error the run aims at. "noise" (the default for forget classes):
  the error the original model makes when its encoder sees a noise image instead of the image
  (what it can say about an image it never learned: nothing but its known pixels), but at least
  TARGET_FLOOR times the original error (a weak model completes noise almost as well as the
  image, so its noise level alone would call a run that forgot nothing "done"). "unseen" (the
  default for a forget list): the original model's loss on held-out images like the listed ones
  (same classes, never trained on): a deleted photo should end as unknown to the model as a photo
  it never saw, not as noise, which would itself show that something was deleted. The loss is the
  family's own (the membership attack's: a completion's hole error for one-pass models, the
  denoising loss for diffusion, the tokens' cross-entropy for a token model), measured on the
  listed and the unseen images alike, since that is what memorising lowers (the retain budget of
  such a run is measured in the same loss: smooth in the weights, where a sampling family's
  completions move by several percent between two checks that changed nothing); when the
  listed images are already no better known than those, the target is reached at once. With a
  calibration model (one that never trained on the listed images: the model before the fine-tune
  that saw them), the unseen level is that model's loss on the listed images themselves, times the
  two models' ratio on the unseen ones: the listed images may be harder or easier than the unseen
  ones, which a population mean cannot know (docs/deletion.md, H6). This
  target is a point, not a floor: reached within POINT_TOLERANCE of it, the closest checkpoint
  kept, and a check that finds the error past it goes back to the closest one, weaker. "attack"
  (a forget list with a calibration model): the run reads the calibrated membership attack itself,
  the AUC of the listed validation images against the held-out unseen ones, and aims at 0.5 within
  POINT_TOLERANCE: a mean loss can sit at its level while the images the attack ranks first are
  still memorised (docs/deletion.md, H9). Or a number R: R times the original error.
- Strength: the method's `forget_alpha` (the weight of the forget term against the retain
  term). While less than half the budget is used, it grows by GROW at each check. When a check
  finds the budget exceeded, `forget_alpha` shrinks by SHRINK and the run goes on from where it
  is, so that the retain term can repair the retain error while the forgetting done so far
  stays; if the next checks find the retain error no longer falling (or still over budget after
  RECOVERY_CHECKS), the run goes back to the best checkpoint within budget (weights and
  optimiser state) and continues from there, weaker again.
- Stop: when the target is reached within budget; when the budget binds (MAX_BACKOFFS returns
  to the best checkpoint, or PATIENCE checks without new progress while more than half the
  budget is used; progress counts whether the forget error or the forget embedding distance
  moved, as the error often lags the embedding); or when the steps run out. The model kept is
  the checkpoint within budget that forgot most. A run that kept no progress at all (the forget
  error rose by less than MIN_GAIN of the way and less than MIN_RISE) ends as "no_progress", whatever stopped it: the
  budget is not to blame when nothing was forgotten.

It acts on `forget_alpha` and on the weights only, so every method and every family gets it; the
whole path (steps, strength, budget used, forget progress) goes into the run record.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from .data import make_mask, parse_task
from .errors import UserError, check_number
from .metrics import hole_mse
from .metrics.membership import calibrated_auc
from .models import I2IModel, noise_like

GROW = 1.5  # forget_alpha multiplier at a check that finds less than half the budget used
SHRINK = 0.5  # forget_alpha multiplier at a check over budget (and again on going back)
MAX_BACKOFFS = 3  # returns to the best checkpoint before the budget is said to bind
RECOVERY_CHECKS = 3  # over-budget checks in a row (the retain error falling) before going back
PATIENCE = 4  # checks without new progress (with over half the budget used) before stopping
MIN_GAIN = 0.01  # progress (share of the way to the target) that counts as new, since the last new progress
MIN_EMBEDDING_GAIN = 0.02  # or: relative fall of the forget embedding distance since then
TARGET_FLOOR = 1.3  # the noise target is at least this times the original forget error: the smallest
# ratio of a retrained model's forget error to its original's that we measured (VQ-GAN, docs/control.md)
POINT_TOLERANCE = 0.05  # the unseen target is reached within this (relative) of it, from either side
MIN_RISE = 0.02  # a kept forget error less than this much (relative) over the original's, and under
# MIN_GAIN of the way to the target, is no progress (the way alone misjudges a far target)


TARGETS = ("auto", "noise", "unseen", "attack")


@torch.no_grad()
def family_losses(model: I2IModel, images: torch.Tensor, task: str, seed: int,
                  steps: int | None = None) -> torch.Tensor:
    """The model's loss on each of `images` in its family's own terms (the loss attack's: minus
    `membership_scores`), under fixed holes and draws: two models measured alike differ only by
    their weights."""
    device = next(model.parameters()).device
    images = images.to(device)
    hole = make_mask(task, len(images), model.image_size, model.mask_cell, torch.Generator().manual_seed(seed))
    return -model.membership_scores(images, hole.to(device), torch.Generator().manual_seed(seed), steps).cpu()


def family_loss(model: I2IModel, images: torch.Tensor, task: str, seed: int, steps: int | None = None) -> float:
    """The mean of `family_losses`."""
    return float(family_losses(model, images, task, seed, steps).mean())


def calibration_scale(model: I2IModel, calibration: I2IModel, unseen: torch.Tensor | None, task: str,
                      seed: int) -> float:
    """The ratio of `model`'s loss to the calibration model's on unseen images (images neither trained
    on): how much better or worse the model is overall; 1 without unseen images."""
    if unseen is None or not len(unseen):
        return 1.0
    with torch.random.fork_rng(devices=[]):
        states = model.training, calibration.training
        model.eval(), calibration.eval()
        ratio = family_loss(model, unseen, task, seed) / family_loss(calibration, unseen, task, seed)
        model.train(states[0]), calibration.train(states[1])
    return ratio


def resolve_target(target: str, forget_list: bool) -> str:
    """The forget target a run uses: "auto" is "unseen" for a forget list, "noise" for classes; an
    explicit "unseen" needs a forget list (a class's unseen images are its test images, which the
    model completes about as well as its training images: nothing to aim at)."""
    if target == "auto":
        return "unseen" if forget_list else "noise"
    if target in ("unseen", "attack") and not forget_list:
        raise UserError(f"--forget-target {target} is for a forget list (sample-level deletion); for forget classes "
                        "use 'noise' or a ratio such as 3")
    return target


@dataclass
class ControlConfig:
    """Settings of a controlled run (see the module docstring)."""

    retain_budget: float = 0.05
    forget_target: str = "noise"  # "noise", "unseen", "attack" or a ratio to the original forget validation error
    check_every: int = 25
    val_images: int = 64  # held-out images per set (forget, retain)
    task: str | None = None  # what the errors are measured on; None: the model's evaluation task

    def check(self) -> None:
        check_number("retain-budget", self.retain_budget, 0, inclusive=False)
        self.target_ratio()
        if self.check_every < 1:
            raise UserError("--check-every must be at least 1")
        if self.val_images < 1:
            raise UserError("--val-images must be at least 1")
        if self.task is not None:
            parse_task(self.task)

    def target_ratio(self) -> float | None:
        """None for a named target (noise, unseen, auto), else the ratio to the original forget error."""
        if self.forget_target in TARGETS:
            return None
        try:
            ratio = float(self.forget_target)
        except ValueError:
            raise UserError(f"--forget-target must be 'noise', 'unseen', 'attack' or a ratio above 1 such as 3, "
                            f"not {self.forget_target!r}") from None
        check_number("forget-target", ratio, 1, inclusive=False)
        return ratio


class Controller:
    """Measures the validation split every `check_every` steps and steers `method.forget_alpha`.

    Called by the engine after each step as `controller(step, optimizer)`; returns True to stop.
    `finish()` puts the best checkpoint within budget back into the model and returns the record.
    """

    def __init__(self, method, forget_val: torch.Tensor, retain_val: torch.Tensor, config: ControlConfig,
                 parameters: list[torch.nn.Parameter], seed: int = 0, sampling_steps: int | None = None,
                 accelerator=None, unseen_val: torch.Tensor | None = None, calibration: I2IModel | None = None,
                 scale: float = 1.0):
        self.method, self.config, self.parameters = method, config, parameters
        self.model: I2IModel = method.model
        self.task = config.task or self.model.default_task
        self.model.check_task(self.task)
        self.seed, self.sampling_steps, self.accelerator = seed, sampling_steps, accelerator
        self.images = {"forget": forget_val, "retain": retain_val}
        self.alpha = float(method.forget_alpha)
        self.backoffs, self.stalled, self.over, self.stop_reason = 0, 0, 0, None
        self.mark = None  # the entry at the last new progress (stalling is counted from it)
        self.path: list[dict] = []
        self.point = config.forget_target in ("unseen", "attack")  # aim at the target, not past it
        self.attack = None  # for the "attack" target: the calibration model's losses, and the unseen images
        if config.forget_target == "attack":
            if calibration is None or unseen_val is None or not len(unseen_val):
                raise UserError("--forget-target attack needs --calibration MODEL and held-out images of the listed "
                                "images' classes (the attack compares the two); use 'unseen' without them")
            with torch.random.fork_rng(devices=[]):
                calibration.eval()
                self.attack = (family_losses(calibration, forget_val, self.task, seed, sampling_steps),
                               family_losses(calibration, unseen_val, self.task, seed, sampling_steps), unseen_val)
        self.start = self._measure()
        ratio = config.target_ratio()
        self.noise_level = None
        if self.attack is not None:
            # the measure is 1.5 - AUC: 1 where the attack cannot tell (AUC 0.5), so that POINT_TOLERANCE of it
            # is 0.05 of AUC, and past it (AUC below 0.45) the deletion itself shows
            self.target = 1.0
            self.target_source = (f"the calibrated attack (AUC of the listed images against {len(unseen_val)} held-out "
                                  "images of the same classes, 0.5 = cannot tell)")
        elif config.forget_target == "unseen" and calibration is not None:
            with torch.random.fork_rng(devices=[]):
                self.target = scale * family_loss(calibration.eval(), forget_val, self.task, seed, sampling_steps)
            seen = f"{len(unseen_val)} held-out images" if unseen_val is not None and len(unseen_val) else "no image"
            self.target_source = (f"calibrated level (the calibration model's loss on the listed images, times "
                                  f"{scale:.3f}, the two models' ratio on {seen} of the same classes)")
        elif config.forget_target == "unseen":
            if unseen_val is None or not len(unseen_val):
                raise UserError("the forget target 'unseen' needs held-out images of the forget images' classes and "
                                "the test split has none; pass --forget-target noise or a ratio such as 3")
            self.target = self._unseen_level(unseen_val)
            self.target_source = (f"unseen level (the original model's error on {len(unseen_val)} held-out images of "
                                  "the same classes, never trained on)")
        elif ratio is None:
            noise, floor = self._noise_level(), TARGET_FLOOR * self.start["forget_error"]
            self.target = max(noise, floor)
            if noise >= floor:
                self.target_source = "noise level (the original model's error when it sees noise)"
            else:
                self.target_source = (f"floor ({TARGET_FLOOR:g}x the original forget error; the noise level, "
                                      f"{noise / self.start['forget_error']:.2f}x, is too close to the original "
                                      "error on this model to show forgetting)")
            self.noise_level = noise
        else:
            self.target = ratio * self.start["forget_error"]
            self.target_source = f"{ratio:g}x the original forget error"
        self.best = self._snapshot(0, self._entry(0, self.start), None)
        self.path.append(self.best["entry"])
        self.mark = self.best["entry"]

    # -- measuring ------------------------------------------------------------------------------
    def _holes(self, count: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed)
        return make_mask(self.task, count, self.model.image_size, self.model.mask_cell, generator)

    @torch.no_grad()
    def _error(self, images: torch.Tensor, own_loss: bool = False) -> float:
        """Mean hole error of completions of `images`; `own_loss`: the family's own loss instead (the
        membership attack's: what memorisation lowers, e.g. a token model's cross-entropy, which its
        sampled completions may not show)."""
        if own_loss:
            return family_loss(self.model, images, self.task, self.seed, self.sampling_steps)
        device = next(self.model.parameters()).device
        images = images.to(device)
        hole = self._holes(len(images)).to(device)
        completed = self.model.complete(images, hole, torch.Generator().manual_seed(self.seed), self.sampling_steps)
        return float(hole_mse(completed, images, hole).mean())

    @torch.no_grad()
    def _noise_level(self) -> float:
        """The original model's forget error when its input is a noise image (before any step)."""
        images = self.images["forget"]
        noise = noise_like(images, self.method.noise, torch.Generator().manual_seed(self.seed + 1))
        device = next(self.model.parameters()).device
        hole = self._holes(len(images)).to(device)
        with torch.random.fork_rng(devices=[]):
            self.model.eval()
            completed = self.model.complete(noise.to(device), hole, torch.Generator().manual_seed(self.seed),
                                            self.sampling_steps)
            self.method.train()
        return float(hole_mse(completed, images.to(device), hole).mean())

    @torch.no_grad()
    def _unseen_level(self, images: torch.Tensor) -> float:
        """The original model's error on held-out images like the forget images (before any step)."""
        with torch.random.fork_rng(devices=[]):
            self.model.eval()
            error = self._error(images, own_loss=True)
            self.method.train()
        return error

    @torch.no_grad()
    def _measure(self) -> dict:
        """Hole errors of both sets and the embedding distances (retain: to the original encoder's
        embedding; forget: to its embedding of noise, the i2i target), under fixed draws."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.model.eval()
            values = {f"{name}_error": self._error(images, own_loss=self.point) for name, images in self.images.items()
                      if self.attack is None or name != "forget"}  # the attack's measure replaces the forget one
            if self.attack is not None:
                listed, unseen, unseen_images = self.attack
                values["forget_auc"] = calibrated_auc(
                    family_losses(self.model, self.images["forget"], self.task, self.seed, self.sampling_steps),
                    listed, family_losses(self.model, unseen_images, self.task, self.seed, self.sampling_steps), unseen)
                values["forget_error"] = 1.5 - values["forget_auc"]
            device = next(self.model.parameters()).device
            model, teacher = self.model, self.method.teacher
            for name, images in self.images.items():
                images = images.to(device)
                draw = model.draw(images, self.task, torch.Generator().manual_seed(self.seed))
                student = model.embed(images, draw)
                if name == "retain":
                    distance = model.embedding_distance(student, model.embed(images, draw, encoder=teacher))
                else:
                    target = model.embed_noise(images, draw, self.method.noise, encoder=teacher)
                    distance = model.forget_distance(student, target)
                values[f"{name}_embedding_distance"] = float(distance)
            self.method.train()
        if self.accelerator is not None and self.accelerator.num_processes > 1:  # one decision on every process
            keys = list(values)
            device = self.accelerator.device
            mean = self.accelerator.reduce(torch.tensor([values[k] for k in keys], device=device), "mean")
            values = dict(zip(keys, mean.tolist()))
        return values

    def _entry(self, step: int, values: dict) -> dict:
        retain_rise = values["retain_error"] / self.start["retain_error"] - 1
        gap = self.target - self.start["forget_error"]
        progress = (values["forget_error"] - self.start["forget_error"]) / gap if gap > 0 else 1.0
        return {"step": step, "forget_alpha": round(self.alpha, 6),
                "budget_used": round(retain_rise / self.config.retain_budget, 4),
                "retain_rise": round(retain_rise, 5), "forget_progress": round(progress, 4),
                "forget_ratio": round(values["forget_error"] / self.start["forget_error"], 4),
                **{key: round(value, 6) for key, value in values.items()}}

    # -- checkpoints ----------------------------------------------------------------------------
    def _snapshot(self, step: int, entry: dict, optimizer) -> dict:
        return {"step": step, "entry": entry, "weights": [p.detach().clone() for p in self.parameters],
                "optimizer": copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None}

    def _restore(self, optimizer) -> None:
        with torch.no_grad():
            for parameter, saved in zip(self.parameters, self.best["weights"]):
                parameter.copy_(saved)
        if optimizer is not None:
            if self.best["optimizer"] is None:  # back to the start: a fresh optimiser state
                getattr(optimizer, "optimizer", optimizer).state.clear()
            else:
                optimizer.load_state_dict(copy.deepcopy(self.best["optimizer"]))

    def _reached(self, entry: dict) -> bool:
        if self.point:  # near the point, or it lay behind the start (nothing memorised to remove)
            return (abs(entry["forget_error"] / self.target - 1) <= POINT_TOLERANCE
                    or self.start["forget_error"] >= self.target)
        return entry["forget_progress"] >= 1

    def _past(self, entry: dict) -> bool:
        """Past a point target by more than its tolerance."""
        return self.point and entry["forget_error"] > (1 + POINT_TOLERANCE) * self.target

    def _better(self, entry: dict) -> bool:
        """More progress than the best so far; where the two differ by less than MIN_GAIN, only if it
        also spent no more budget. For a point target: closer to it."""
        best = self.best["entry"]
        if self.point:
            return abs(entry["forget_error"] - self.target) < abs(best["forget_error"] - self.target)
        return (entry["forget_progress"] >= best["forget_progress"] + MIN_GAIN
                or (entry["forget_progress"] > best["forget_progress"] and entry["budget_used"] <= best["budget_used"]))

    def _progressed(self, entry: dict) -> bool:
        """New progress since the mark: in the forget error, or in the forget embedding distance (the
        method's own objective moves first; the error follows once embeddings near the target)."""
        mark = self.mark
        return (entry["forget_progress"] >= mark["forget_progress"] + MIN_GAIN
                or entry["forget_embedding_distance"] <= (1 - MIN_EMBEDDING_GAIN) * mark["forget_embedding_distance"])

    # -- the decision after each step -----------------------------------------------------------
    def __call__(self, step: int, optimizer) -> bool:
        if step % self.config.check_every:
            return False
        entry = self._entry(step, self._measure())
        self.path.append(entry)
        if self.accelerator is not None:  # to the run's trackers, if it has any
            self.accelerator.log({f"control/{key}": value for key, value in entry.items()
                                  if key != "step" and isinstance(value, (int, float))}, step=step)
        previous = self.path[-2]
        if entry["budget_used"] <= 1:
            self.over = 0
            if self._better(entry):
                self.best = self._snapshot(step, entry, optimizer)
            if self._reached(entry):
                self.stop_reason = "target"
                return True
            if self._past(entry):  # jumped past the unseen level: back to the closest checkpoint, weaker
                return self._go_back(entry, optimizer, "overshoot")
            if self._progressed(entry):
                self.stalled, self.mark = 0, entry
            else:
                self.stalled += 1
            if entry["budget_used"] <= 0.5:
                self.alpha *= GROW
                entry["action"] = "stronger"
            elif self.stalled >= PATIENCE:
                self.stop_reason = "budget"
                return True
        elif self.over == 0 or (self.over < RECOVERY_CHECKS and entry["retain_rise"] < previous["retain_rise"]):
            if self.over == 0:  # just went over: weaker, and let the retain term repair from here
                self.alpha *= SHRINK
                entry["action"] = "weaker"
            self.over += 1
        else:  # over budget and not recovering: back to the best checkpoint within budget
            return self._go_back(entry, optimizer, "budget")
        self.method.forget_alpha = self.alpha
        return False

    def _go_back(self, entry: dict, optimizer, reason: str) -> bool:
        """Back to the best checkpoint, weaker; after MAX_BACKOFFS returns, stop (for `reason`)."""
        self.backoffs += 1
        entry["went_back_to_step"] = self.best["step"]
        if self.backoffs >= MAX_BACKOFFS:
            self.stop_reason = reason
            return True
        self._restore(optimizer)
        self.alpha *= SHRINK
        self.stalled, self.over, self.mark = 0, 0, self.best["entry"]
        entry["action"] = "back and weaker"
        self.method.forget_alpha = self.alpha
        return False

    def finish(self, steps_run: int, settled: bool = False) -> dict:
        """Keep the best checkpoint within budget (the last step's model is checked too, when the
        run did not stop at a check); return the record of the run's path. `settled`: the run
        stopped early because its training terms settled (--settle)."""
        if self.path[-1]["step"] < steps_run:
            entry = self._entry(steps_run, self._measure())
            self.path.append(entry)
            if entry["budget_used"] <= 1 and self._better(entry):
                self.best = self._snapshot(steps_run, entry, None)
                if self._reached(entry):
                    self.stop_reason = "target"
        self._restore(None)
        best = self.best["entry"]
        reason = stopped_by = self.stop_reason or ("settled" if settled else "steps")
        pct = 100 * self.config.retain_budget
        measured = "loss" if self.point else "error"  # a point target is measured in the family's own loss
        if self.attack is not None:
            forget = (f"the calibrated attack's AUC on the validation split {best['forget_auc']:.3f} (was "
                      f"{self.start['forget_auc']:.3f}; target 0.5 within {POINT_TOLERANCE:g})")
        else:
            forget = (f"forget validation {measured} {best['forget_ratio']:.2f}x the original (target "
                      f"{self.target / self.start['forget_error']:.2f}x, {self.target_source.split(' (')[0]})")
        state = (f"{forget}, retain {100 * best['retain_rise']:+.1f}% (budget {pct:g}%), kept the model of step "
                 f"{best['step']}")
        if reason not in ("target", "overshoot") and best["forget_progress"] < MIN_GAIN \
                and best["forget_ratio"] < 1 + MIN_RISE:
            reason = "no_progress"  # whatever stopped it, the budget did not: nothing was forgotten
            ratios = [point["forget_ratio"] for point in self.path[1:]]
            trend = (f"the forget validation error went {min(ratios):.2f}x to {max(ratios):.2f}x the original over "
                     f"{len(ratios)} checks" if ratios else "no check was made")
            why = {"settled": "the training terms settled (--settle)", "steps": "the steps ran out",
                   "budget": "the controller stopped it (retain budget checks)",
                   "overshoot": "the controller stopped it (past the target at every try)"}[stopped_by]
            message = (f"no progress: {trend} while forget_alpha reached {max(p['forget_alpha'] for p in self.path):.3g} "
                       f"until {why}; {state}. The method does not separate the forget set from the retain set on this model: "
                       "try another --method, or check the forget classes")
        elif reason == "target":
            message = f"target reached: {state}"
        elif reason == "overshoot":
            message = (f"the forget error kept jumping past the target between checks: {state}, the closest "
                       "checkpoint; a smaller --lr or --check-every comes closer")
        elif reason == "budget":
            message = (f"the retain budget binds, the target is unreachable within it: {state}; "
                       f"{100 * best['forget_progress']:.0f}% of the way. Raise --retain-budget to forget more")
        elif reason == "settled":
            message = (f"the training terms settled before the target (--settle): {state}; "
                       f"{100 * best['forget_progress']:.0f}% of the way")
        else:
            advice = ("More --steps may forget further" if best["budget_used"] <= 0.5 else
                      "Most of the budget is used: more --steps may forget a little further, a larger "
                      "--retain-budget more")
            message = (f"steps ran out before the target: {state}; {100 * best['forget_progress']:.0f}% of the "
                       f"way. {advice}")
        return {"outcome": reason if reason != "steps" else "steps_ran_out", "message": message,
                "stopped_by": stopped_by if stopped_by != "steps" else "steps_ran_out",
                "retain_budget": self.config.retain_budget, "forget_target": self.config.forget_target,
                "target_error": round(self.target, 6), "target_source": self.target_source,
                "noise_level": None if self.noise_level is None else round(self.noise_level, 6),
                "original": {k: round(v, 6) for k, v in self.start.items()},
                "kept_step": self.best["step"], "kept": best, "steps_run": steps_run,
                "check_every": self.config.check_every, "task": self.task,
                "validation_images": {name: len(images) for name, images in self.images.items()},
                "path": self.path}

    # -- resuming -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "backoffs": self.backoffs, "stalled": self.stalled, "over": self.over,
                "path": self.path, "best": self.best, "mark": self.mark}

    def load_state_dict(self, state: dict) -> None:
        self.alpha, self.backoffs, self.stalled, self.over = (state["alpha"], state["backoffs"], state["stalled"],
                                                              state["over"])
        self.path, self.best, self.mark = state["path"], state["best"], state["mark"]
        self.method.forget_alpha = self.alpha
