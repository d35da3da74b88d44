"""Train a model from scratch (or from another checkpoint's weights, `init`): the bundled models, and the
retrain-without-the-forget-set gold standard."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from . import engine
from .cards import CARD, train_card
from .data import is_degradation, load_dataset, parse_task, stack_images
from .data.degradations import canonical, check_degradation
from .errors import UserError, check_number
from .models import FAMILIES, I2IModel, create_model, load_model
from .models.base import save_dtype
from .records import RunRecord, atomic_out_dir, check_out_dir, failure_recorded, partial_state, run_identity


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in its record)."""

    dataset: str = "fashion-mnist"
    family: str = "mae"
    image_size: int = 32
    channels: int = 1
    exclude_classes: list[str] = field(default_factory=list)
    model: dict = field(default_factory=dict)  # family settings, e.g. {"patch_size": 4, "depth": 6}
    mask: str | None = None  # None: the family's default training mask
    task: str | None = None  # a whole-image degradation to invert (sketch, lowres, colourise, jpeg) instead of holes
    init: str | None = None  # start from this checkpoint's weights (same family, size, channels) instead of random
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    seed: int = 0
    save_dtype: str = "float32"
    tokenizer: str | None = None  # vqgan: a trained tokenizer to reuse (else one is trained first)
    tokenizer_steps: int = 2500  # vqgan: steps of tokenizer training when none is given
    precision: str = "fp32"  # or "bf16": autocast of the step's forward pass (engine.run)
    compile: bool = False  # torch.compile the step

    def check(self) -> None:
        """Refuse settings that cannot train a model, before anything is read or written."""
        engine.check_precision(self.precision)
        save_dtype(self.save_dtype)
        if self.mask is not None:
            parse_task(self.mask)
            if is_degradation(self.mask):
                raise UserError(f"--mask {self.mask} is a degradation, not a mask; pass it as --task {self.mask}")
        if self.task is not None:
            parse_task(self.task)
            if not is_degradation(self.task):
                raise UserError(f"--task {self.task} is a mask; pass it as --mask {self.task}")
            if self.mask is not None:
                raise UserError(f"--task {self.task} has no holes; drop --mask {self.mask}")
            if self.family in FAMILIES:  # an unknown family is refused, by name, where the model is made
                FAMILIES[self.family].check_can_learn(self.task)
            check_degradation(self.task, self.image_size, self.channels)
        if self.init is not None and self.model:
            raise UserError("--model-config builds a new model and --init starts from a checkpoint; drop one of them")
        for flag, value in (("steps", self.steps), ("batch-size", self.batch_size), ("image-size", self.image_size)):
            if value < 1:
                raise UserError(f"--{flag} must be at least 1, not {value}")
        if self.warmup_steps < 0:
            raise UserError("--warmup-steps must not be negative")
        check_number("lr", self.lr, 0, inclusive=False)
        check_number("weight-decay", self.weight_decay, 0)
        if self.family != "vqgan" and self.tokenizer is not None:
            raise UserError(f"--tokenizer is for the vqgan family; the {self.family} family has no tokenizer")
        if self.tokenizer_steps < 1:
            raise UserError(f"--tokenizer-steps must be at least 1, not {self.tokenizer_steps}")


class TaskObjective(nn.Module):
    """The family's own loss on training images under a fresh draw (mask, and e.g. timestep)."""

    def __init__(self, model: I2IModel, mask: str | None):
        super().__init__()
        self.model = model
        self.mask = mask

    def forward(self, batch):
        images = batch["train"]
        return self.model.task_loss(images, self.model.draw(images, self.mask)), {}  # no mask: the model's task


def train(config: TrainConfig, out: str | Path, cpu: bool = False, resume: bool = False,
          state_every: int = 100, log_with: str | None = None, log_dir: str | Path | None = None) -> dict:
    """Train a model as `config` says and save it to `out` (a new folder); returns the run record.
    `log_with`: a tracker Accelerate supports (tensorboard, wandb, ...) that also gets the training
    curves, in `log_dir` (default: OUT.logs beside `out`)."""
    config.check()
    if log_with is not None:  # here, as a VQ-GAN's tokenizer trains before the accelerator (which checks too) exists
        engine.check_tracker(log_with)
    data = load_dataset(config.dataset, "train", config.image_size, config.channels)
    excluded = sorted({data.class_index(name) for name in config.exclude_classes})
    rows = [i for i, label in enumerate(data.labels) if label not in excluded]
    if not rows:
        raise UserError("no training images left after --exclude-classes; exclude fewer classes")
    torch.manual_seed(config.seed)
    settings = {**config.model, **({"tokenizer": config.tokenizer} if config.tokenizer else {})}
    if config.init is not None:
        model = _initial(config)
    else:
        model = create_model(config.family, image_size=config.image_size, channels=config.channels,
                             **settings, **({"degradation": config.task} if config.task else {}))
    folder = check_out_dir(out)  # created once there is a model to save
    state = partial_state(folder, resume)
    record = RunRecord("train", {**asdict(config), "mask": config.mask or model.training_task})
    extra = {}
    if config.family == "vqgan" and "tokenizer" not in settings and config.init is None:
        extra["tokenizer"] = _train_tokenizer(model, Subset(data, rows), config, state.parent)
    accelerator = engine.make_accelerator(cpu, log_with, log_dir or folder.with_name(folder.name + ".logs"))
    engine.track_config(accelerator, "train", record.payload["config"])
    optim = engine.OptimConfig(steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                               warmup_steps=config.warmup_steps, schedule="cosine", grad_clip=1.0)
    parameters = [p for p in model.parameters() if p.requires_grad]
    with failure_recorded(folder, record, state, accelerator.is_main_process):
        history = engine.run(TaskObjective(model, config.mask), parameters,
                             {"train": engine.loader(Subset(data, rows), config.batch_size, config.seed)},
                             optim, config.seed, accelerator, description="train", state=state,
                             state_every=state_every, resume=resume, identity=run_identity(config),
                             precision=config.precision, compile=config.compile)
    model = accelerator.unwrap_model(model)
    if accelerator.is_main_process:
        model.check_finite()
    payload = record.finish(
        data={"dataset": config.dataset, "images": len(rows), "classes": [c for i, c in enumerate(data.class_names)
                                                                         if i not in excluded],
              "excluded_classes": [data.class_names[i] for i in excluded]},
        parameters={"total": sum(p.numel() for p in model.parameters()),
                    "encoder": sum(p.numel() for p in model.encoder.parameters())},
        final_loss=history[-1]["loss"] if history else None, processes=accelerator.num_processes,
        history=history, **extra)
    if accelerator.is_main_process:
        with atomic_out_dir(folder) as temporary:
            model.save_pretrained(temporary, dtype=save_dtype(config.save_dtype))
            record.write(temporary / "train_record.json")
            train_card(payload).save(temporary / CARD)
    engine.end_tracking(accelerator)
    return payload


def _initial(config: TrainConfig) -> I2IModel:
    """The checkpoint `config.init`, checked against the run's family, size and channels, set to learn
    `config.task` (or to fill holes)."""
    model = load_model(config.init)
    if (model.family, model.image_size, model.channels) != (config.family, config.image_size, config.channels):
        raise UserError(f"--init {config.init} is a {model.family} model of {model.image_size}px x {model.channels} "
                        f"channel(s); pass --family {model.family} --image-size {model.image_size} --channels "
                        f"{model.channels} to fine-tune it")
    model.degradation = canonical(config.task) if config.task else None
    return model


def _train_tokenizer(model, images, config: TrainConfig, partial: Path) -> dict:
    """Train the VQ-GAN family's tokenizer (its own loop) on the training images, in place;
    returns its history and its quality on (at most 2,000) test images. A finished tokenizer is
    kept in `partial` until the run ends, so that a resumed run does not train it again."""
    from safetensors.torch import load_file, save_file

    from .tokenizer import TokenizerConfig, tokenizer_quality, train_tokenizer

    settings = TokenizerConfig(steps=config.tokenizer_steps)
    kept = partial / "tokenizer.safetensors"
    if kept.is_file():
        model.tokenizer.load_state_dict(load_file(kept))
        history = json.loads((partial / "tokenizer_history.json").read_text())
    else:
        history = train_tokenizer(model.tokenizer, images, settings, seed=config.seed)
        partial.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.tokenizer.state_dict().items()}, kept)
        (partial / "tokenizer_history.json").write_text(json.dumps(history))
    test = load_dataset(config.dataset, "test", config.image_size, config.channels)
    sample = stack_images(test, 2000)
    return {"settings": asdict(settings), "history": history, "test": tokenizer_quality(model.tokenizer, sample)}
