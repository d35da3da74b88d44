"""Run one unlearning request: a method, a model, forget and retain sets -> a new checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import engine
from .audit import chain, earlier_deletions, write_certificate
from .cards import write_unlearn_card
from .control import ControlConfig, Controller, calibration_scale, resolve_target
from .data import (Splits, emphasise_in_retain, exclude_from_retain, hold_out_validation, membership_sets, parse_task,
                   stack_images)
from .errors import UserError, check_memory, check_number
from .memorise import training_mix
from .methods import AUTO, METHODS, create_method, resolve_method
from .models import I2IModel, checkpoint_folder, load_model, same_kind
from .models.base import save_dtype, stored_dtype
from .records import RunRecord, atomic_out_dir, check_out_dir, failure_recorded, partial_state, run_identity
from .viz import control_plot


FIXED_STEPS = 300  # a fixed-alpha run: measured on the bundled models (docs/results.md)
CONTROLLED_STEPS = 600  # a controlled run stops earlier when the target is reached or the budget binds


@dataclass
class UnlearnConfig:
    """Settings of an unlearning run. Defaults follow the official code where it sets them
    (AdamW betas (0.9, 0.95), weight decay 0.05, grad clip 3.0, retain_alpha 1, forget_alpha 0.2,
    "normal" noise); lr and steps are sized for small models on a CPU (measured in docs/results.md).

    With `retain_budget` set (the default) the run is controlled (control.py): forget_alpha is
    only where it starts, `steps` the most it may take; `retain_budget=None` is a fixed-alpha run
    of exactly `steps` steps (the paper's setting)."""

    method: str = AUTO  # resolve_method: calibrated or i2i_max_loss when controlled, i2i at a fixed alpha
    forget_alpha: float = 0.2
    retain_alpha: float = 1.0
    noise: str = "normal"
    mask: str | None = None  # None: the model family's default training mask
    steps: int | None = None  # None: 600 for a controlled run (the most it may take), 300 for a fixed one
    batch_size: int = 64  # per set: each step sees this many forget and this many retain images
    lr: float = 3e-4
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    warmup_steps: int = 20
    grad_clip: float = 3.0
    seed: int = 0
    retain_budget: float | None = 0.05  # None: fixed forget_alpha, no validation split
    forget_target: str = "auto"  # noise for forget classes, unseen for a forget list (control.resolve_target)
    check_every: int = 25
    val_images: int = 64
    settle: float | None = None  # stop once the logged terms have settled to within this (engine.settled)
    precision: str = "fp32"  # or "bf16": autocast of the step's forward pass (engine.run)
    compile: bool = False  # torch.compile the step
    save_dtype: str | None = None  # precision of the saved weights; None: the source checkpoint's
    calibration: str | None = None  # a model that never trained on the listed images (forget lists only)

    @property
    def max_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return FIXED_STEPS if self.retain_budget is None else CONTROLLED_STEPS

    def control(self) -> ControlConfig | None:
        if self.retain_budget is None:
            return None
        return ControlConfig(self.retain_budget, self.forget_target, self.check_every, self.val_images)

    def check(self) -> None:
        engine.check_precision(self.precision)
        if self.save_dtype is not None:
            save_dtype(self.save_dtype)
        if self.mask is not None:
            parse_task(self.mask)
        for name in ("max_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('max_', '').replace('_', '-')} must be at least 1")
        if self.warmup_steps < 0:
            raise UserError("--warmup-steps must not be negative")
        check_number("lr", self.lr, 0, inclusive=False)
        for flag, value in (("forget-alpha", self.forget_alpha), ("retain-alpha", self.retain_alpha),
                            ("weight-decay", self.weight_decay), ("grad-clip", self.grad_clip)):
            check_number(flag, value, 0)
        if self.settle is not None:
            check_number("settle", self.settle, 0, high=1, inclusive=False)
        check_number("beta1", self.beta1, 0, high=1)
        check_number("beta2", self.beta2, 0, high=1)
        if self.control() is not None:
            self.control().check()
        if self.forget_alpha == 0 and self.retain_alpha == 0:
            raise UserError("--forget-alpha and --retain-alpha are both 0, so nothing would be learnt; "
                            "set at least one above 0")


@torch.no_grad()
def _to_saved_precision(model: I2IModel, dtype: torch.dtype) -> None:
    """Round the weights to the precision they are saved in, so that metrics measured on the model in
    memory (a demo's, recorded in the certificate) are those of the checkpoint on disk."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point() and tensor.dtype != dtype:
            tensor.copy_(tensor.to(dtype))


def retain_as_trained(splits: Splits, source: Path) -> Splits:
    """The retain set of a request to `source`: without what earlier deletions of its chain removed,
    and with the images a `memorise` run over-represented (still kept) at the share it trained them."""
    dataset, links = splits.info["dataset"], chain(source)
    earlier = earlier_deletions(links, dataset)
    splits = exclude_from_retain(splits, earlier)
    forget = splits.forget.dataset
    removed = set(earlier) | {forget.ids[i] for i in splits.forget.indices} if hasattr(forget, "ids") else set(earlier)
    mix = training_mix(links, dataset, removed)
    return emphasise_in_retain(splits, *mix) if mix else splits


def load_calibration(path: str, model: I2IModel) -> I2IModel:
    """The calibration model of a forget list: a checkpoint of the same kind as `model` that never trained
    on the listed images (the model before the fine-tune that saw them)."""
    calibration = same_kind(load_model(path), model, "calibration", path)
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(1, model.channels, model.image_size, model.image_size, generator=generator)
    try:
        with torch.no_grad():
            calibration.task_loss(probe, model.draw(probe, generator=generator))
    except Exception:  # another architecture of the same family: shapes disagree somewhere
        raise UserError(f"the calibration model {path} is built differently from the model to unlearn (its "
                        "layers do not take the same draws); give the model it was fine-tuned from") from None
    return calibration.eval()


def unlearn(model: I2IModel, splits: Splits, config: UnlearnConfig, out: str | Path | None = None,
            cpu: bool = False, source: str | None = None, resume: bool = False,
            state_every: int = 100, sign_key=None, log_with: str | None = None,
            log_dir: str | Path | None = None) -> tuple[I2IModel, dict]:
    """Make `model` forget `splits.forget` while keeping `splits.retain`; returns (model, record).

    The model is changed in place. With `out`, the result is saved there (a new folder:
    the checkpoint, unlearn_record.json and certificate.json, the audit record of the deletion);
    the source checkpoint is never written to. A controlled run (`config.retain_budget`) trains
    on the sets minus a small validation split and records its path under "control".
    `sign_key` (an Ed25519 private key, `audit.load_signing_key`) signs the certificate. `log_with`: a
    tracker Accelerate supports (tensorboard, wandb, ...) that also gets the loss terms, the learning
    rate, the controller's checks and the result, in `log_dir` (default: OUT.logs beside `out`).
    """
    config.check()
    if config.mask is not None:
        model.check_task(config.mask)
    if source is not None:  # the retain set as the model was trained on it
        splits = retain_as_trained(splits, checkpoint_folder(source))
    asked, forget_list = config.forget_target, bool(splits.info.get("forget_list"))
    calibration = None
    if config.calibration is not None:
        if not forget_list:
            raise UserError("--calibration is for a forget list (sample-level deletion): a model that never trained "
                            "on the listed images; for forget classes leave it out")
        calibration = load_calibration(config.calibration, model)
    name = resolve_method(config.method, config.control() is not None,
                          calibrated=calibration is not None and model.calibrated_deletion)
    config = replace(config, method=name, forget_target=resolve_target(asked, forget_list))
    needs_calibration = name in METHODS and METHODS[name].needs_calibration
    if needs_calibration and calibration is None:
        create_method(config.method, model)  # its one-line error, before anything is written
    attack = config.control() is not None and config.forget_target == "attack"
    if attack and calibration is None:
        raise UserError("--forget-target attack needs --calibration MODEL: the attack it reads compares the model "
                        "with one that never trained on the listed images")
    if not (model.calibrated_deletion or needs_calibration or attack):
        calibration = None  # a family that aims at the unseen level (I2IModel.calibrated_deletion)
    unseen = None
    if calibration is not None or (config.control() is not None and config.forget_target == "unseen"):
        per_image = -(-config.val_images // len(splits.forget))  # about --val-images of them, however short the list
        unseen = membership_sets(splits, seed=config.seed + 1, per_member=per_image)[1]
        unseen = stack_images(unseen) if len(unseen) else None
        if unseen is None and asked == "auto" and calibration is None:  # nothing to compare with: the noise level
            config = replace(config, forget_target="noise")
    check_memory("--batch-size", 2 * config.batch_size, model.channels, model.image_size)  # forget + retain
    folder = check_out_dir(out) if out is not None else None  # created once there is a model to save
    state = partial_state(folder, resume) if folder is not None else None
    dtype_name = config.save_dtype or (stored_dtype(checkpoint_folder(source)) if source else "float32")
    scale = calibration_scale(model, calibration, unseen, model.default_task, config.seed) if calibration else None
    record = RunRecord("unlearn", {**asdict(config), "mask": config.mask or model.training_task,
                                   "save_dtype": dtype_name, "family": model.family, "source_checkpoint": source,
                                   **({"calibration_scale": round(scale, 6)} if calibration else {})})
    torch.manual_seed(config.seed)
    method = create_method(config.method, model, calibration=calibration, mask=config.mask,
                           forget_alpha=config.forget_alpha, retain_alpha=config.retain_alpha, noise=config.noise)
    if needs_calibration:
        method.scale.fill_(scale)
    parameters = method.trainable_parameters()
    if log_dir is None:
        log_dir = folder.with_name(folder.name + ".logs") if folder is not None else "i2i-unlearn-logs"
    accelerator = engine.make_accelerator(cpu, log_with, log_dir)
    engine.track_config(accelerator, "unlearn", record.payload["config"])
    optim = engine.OptimConfig(steps=config.max_steps, lr=config.lr, weight_decay=config.weight_decay,
                               betas=(config.beta1, config.beta2), warmup_steps=config.warmup_steps,
                               schedule="constant", grad_clip=config.grad_clip)
    training, controller = splits, None
    if config.control() is not None:
        training, forget_val, retain_val = hold_out_validation(splits, config.val_images, config.seed)
        method.to(accelerator.device)
        forget_val, retain_val = (stack_images(images).to(accelerator.device) for images in (forget_val, retain_val))
        if accelerator.is_main_process:  # a sampling family takes a while here: say what is happening
            print(f"measuring the original model on the validation split ({len(forget_val)} forget + "
                  f"{len(retain_val)} retain images) for the retain budget and the forget target ...", flush=True)
        if unseen is not None:
            unseen = unseen.to(accelerator.device)
        controller = Controller(method, forget_val, retain_val, config.control(), parameters, config.seed,
                                accelerator=accelerator, unseen_val=unseen, calibration=calibration,
                                scale=scale or 1.0)
    loaders = {"forget": engine.loader(training.forget, config.batch_size, config.seed),
               "retain": engine.loader(training.retain, config.batch_size, config.seed + 1)}
    with failure_recorded(folder, record, state, accelerator.is_main_process):
        history = engine.run(method, parameters, loaders, optim, config.seed, accelerator,
                             description=f"unlearn ({config.method})", state=state, state_every=state_every,
                             resume=resume, identity={"config": run_identity(config), "source": source,
                                                      "data": training.info},
                             after_step=controller, extra_state=controller, precision=config.precision,
                             compile=config.compile, settle=config.settle)
    model = accelerator.unwrap_model(method).model.eval()
    steps_run = history[-1]["step"] if history else 0
    extra = {"steps_run": steps_run}
    settled = config.settle is not None and steps_run < config.max_steps  # stopped early, by --settle
    if controller is not None:  # unless the controller stopped it (or the last step reached the target)
        extra["control"] = controller.finish(steps_run, settled)
        settled = extra["control"]["stopped_by"] == "settled"
    if settled:
        extra["settled_at"] = steps_run
    if "control" in extra:  # the run's result, as the last point of its trackers' curves
        kept = extra["control"]["kept"]
        accelerator.log({"result/forget_ratio": kept["forget_ratio"], "result/retain_rise": kept["retain_rise"],
                         "result/kept_step": extra["control"]["kept_step"]}, step=steps_run)
    engine.end_tracking(accelerator)
    payload = record.finish(data=training.info, trained_parameters=sum(p.numel() for p in parameters),
                            processes=accelerator.num_processes, history=history, **extra)
    if folder is not None:  # on every process: the model returned (and evaluated) is the model saved
        _to_saved_precision(model, save_dtype(dtype_name))
    if folder is not None and accelerator.is_main_process:
        model.check_finite()
        original = checkpoint_folder(source).resolve() if source else None
        with atomic_out_dir(folder) as temporary:
            model.save_pretrained(temporary, dtype=save_dtype(dtype_name))
            record.write(temporary / "unlearn_record.json")
            write_certificate(temporary, payload, splits, original, key=sign_key,  # validation images too
                              calibration=checkpoint_folder(config.calibration).resolve() if calibration else None)
            write_unlearn_card(temporary)
            if controller is not None:
                control_plot(payload["control"], temporary / "control.png")
    return model, payload
