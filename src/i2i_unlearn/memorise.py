"""A model that has memorised a few images: the case a person's deletion request is about.

Models memorise the images they see many times (duplicated images are the ones extracted from
generative models, Carlini et al., USENIX Security 2023), not the ones seen a few times among
thousands. `memorise` fine-tunes a trained model on its own training data in which a listed set
of images (one customer's photos) comes back at every step: each step holds `rate` draws per
listed image (half the batch at most), the rest ordinary training images, so that every listed
image is seen `steps x rate` times. Run again with some images left out of the list, it gives
the honest reference of a deletion request: the same fine-tune without the deleted images.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Subset

from . import engine
from .cards import CARD, memorise_card
from .data import load_dataset, read_forget_list
from .errors import UserError, check_number
from .models import I2IModel, checkpoint_folder, load_model
from .models.base import save_dtype, stored_dtype
from .records import RunRecord, atomic_out_dir, check_out_dir, failure_recorded, run_identity


@dataclass
class MemoriseConfig:
    """Everything that defines a memorising fine-tune (saved in its record)."""

    images: str = ""  # a file of training image ids/paths (as a forget list)
    dataset: str = "fashion-mnist"
    steps: int = 1500
    batch_size: int = 64
    rate: float = 0.5  # draws of each listed image per step
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 50
    seed: int = 0

    def check(self) -> None:
        for flag, value, lowest in (("steps", self.steps, 1), ("batch-size", self.batch_size, 2)):
            if value < lowest:  # a batch holds a listed and an ordinary image at least
                raise UserError(f"--{flag} must be at least {lowest}, not {value}")
        if self.warmup_steps < 0:
            raise UserError("--warmup-steps must not be negative")
        check_number("rate", self.rate, 0, inclusive=False)
        check_number("lr", self.lr, 0, inclusive=False)
        check_number("weight-decay", self.weight_decay, 0)

    def listed_per_step(self, listed: int) -> int:
        """Listed images in each step's batch: `rate` per image, at least 1, at most half the batch."""
        return max(1, min(round(self.rate * listed), self.batch_size // 2))


class _MixedObjective(nn.Module):
    """The family's training loss on the listed images and ordinary ones of a step, as one batch."""

    def __init__(self, model: I2IModel):
        super().__init__()
        self.model = model

    def forward(self, batch):
        images = torch.cat([batch["listed"], batch["ordinary"]])
        return self.model.task_loss(images, self.model.draw(images)), {}


def memorise(source: str | Path, config: MemoriseConfig, out: str | Path, cpu: bool = False) -> dict:
    """Fine-tune the checkpoint `source` as `config` says and save it to `out` (a new folder); returns
    the run record. The whole generator trains (as it did in training); a tokenizer stays fixed."""
    config.check()
    model = load_model(source)
    train = load_dataset(config.dataset, "train", model.image_size, model.channels)
    test = load_dataset(config.dataset, "test", model.image_size, model.channels)
    listed = read_forget_list(config.images, train, test, what="image list")
    listed_set = set(listed)
    ordinary = [i for i in range(len(train)) if i not in listed_set]
    if not ordinary:
        raise UserError("every training image is listed; list only the images to memorise")
    per_step = config.listed_per_step(len(listed))
    folder = check_out_dir(out)
    record = RunRecord("memorise", {**asdict(config), "source_checkpoint": str(source), "family": model.family,
                                    "listed_per_step": per_step})
    torch.manual_seed(config.seed)
    parameters = model.freeze_all_but_generator()
    accelerator = engine.make_accelerator(cpu)
    optim = engine.OptimConfig(steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                               warmup_steps=config.warmup_steps, schedule="cosine", grad_clip=1.0)
    loaders = {"listed": engine.loader(Subset(train, listed), per_step, config.seed),
               "ordinary": engine.loader(Subset(train, ordinary), config.batch_size - per_step, config.seed + 1)}
    with failure_recorded(folder, record, None, accelerator.is_main_process):
        history = engine.run(_MixedObjective(model), parameters, loaders, optim, config.seed, accelerator,
                             description="memorise", identity=run_identity(config))
    model = accelerator.unwrap_model(model)
    model.check_finite()
    payload = record.finish(
        data={"dataset": config.dataset, "listed": [train.ids[i] for i in listed], "ordinary_images": len(ordinary),
              "exposures_per_listed_image": round(config.steps * per_step / len(listed), 1)},
        final_loss=history[-1]["loss"] if history else None, processes=accelerator.num_processes, history=history)
    if accelerator.is_main_process:
        with atomic_out_dir(folder) as temporary:
            model.save_pretrained(temporary, dtype=save_dtype(stored_dtype(checkpoint_folder(source))))
            record.write(temporary / "memorise_record.json")
            memorise_card(payload).save(temporary / CARD)
    return payload


def choose_private(dataset: str, size: int = 64, seed: int = 0, image_size: int = 32,
                   channels: int = 1) -> tuple[list[str], list[str]]:
    """A private set for a deletion scenario: `size` training images drawn at random with `seed`
    (one customer's photos), and as many held-out test images of the same classes, none a copy of
    a private image's pixels (the non-members a membership attack must tell them from); as ids."""
    from .data.splits import pixel_key

    train = load_dataset(dataset, "train", image_size, channels)
    test = load_dataset(dataset, "test", image_size, channels)
    if size < 2 or size > len(train):
        raise UserError(f"a private set of {size} images cannot be drawn from {len(train)} training images")
    generator = torch.Generator().manual_seed(seed)
    private = torch.randperm(len(train), generator=generator)[:size].tolist()
    copies = {pixel_key(train[i][0]) for i in private}
    order = torch.randperm(len(test), generator=generator).tolist()
    outside = []
    for label in sorted(train.labels[i] for i in private):
        match = next((i for i in order if test.labels[i] == label and i not in outside
                      and pixel_key(test[i][0]) not in copies), None)
        if match is None:
            raise UserError(f"the test split has too few images of class {train.class_names[label]} to pair with "
                            "the private set; draw a smaller one")
        outside.append(match)
    return [train.ids[i] for i in sorted(private)], [test.ids[i] for i in sorted(outside)]


def training_mix(links: list[tuple[Path, dict | None]], dataset: str,
                 removed: set[str]) -> tuple[list[str], float] | None:
    """(listed images still to keep, their share of a batch) of the `memorise` run in a chain of
    deletions (`audit.chain`), so that an unlearning run's retain set follows the mix the model was
    trained on; `removed`: ids deleted by this request and earlier ones. None when there is no such run."""
    import json

    from .audit import _absolute

    for folder, _ in links:
        record_file = folder / "memorise_record.json"
        if record_file.is_file():
            record = json.loads(record_file.read_text())
            config = record["config"]
            if _absolute(config["dataset"]) != _absolute(dataset):
                return None
            remaining = [i for i in record["data"]["listed"] if i not in removed]
            per_step = min(config["rate"] * len(remaining), config["batch_size"] // 2)
            return (remaining, per_step / config["batch_size"]) if remaining else None
    return None
