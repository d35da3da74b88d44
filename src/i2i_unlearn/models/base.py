"""The interface every model family implements, so that every method and every metric works with it.

A family wraps one library model and says:

- which modules are its **encoder** (what encoder-only unlearning fine-tunes; the teacher is a
  frozen copy of exactly these) and which parameters are its **generator** (what whole-model
  baselines train; a tokenizer or other fixed part is not among them);
- what one training step draws at random (`draw`: the hole, and e.g. a diffusion timestep and
  its noise), so that a student and a teacher can be run under the same draw;
- the encoder's **embedding** of a batch under a draw: a list of tensors (one per resolution
  level for a UNet), compared by `embedding_distance`;
- its own task: one forward pass (`predict`), what that pass should output (`task_target`) and
  the loss between them over the hole (`prediction_loss`);
- how it **completes** a masked image, seeded and with sampler settings; a family whose input is a
  whole image (`degradations`) may instead be trained to invert one degradation T(x) (a sketch, a
  low-resolution or grey or JPEG copy): such a checkpoint's `degradation` says which, its hole is
  every pixel, and `complete(images, hole)` translates T(images) into an image.

Methods, the engine and evaluation use nothing else.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

NOISE_KINDS = ("normal", "uniform", "constant")


@dataclass
class Draw:
    """Everything one step draws at random for one batch, shared by student and teacher.

    `hole` is a bool tensor (batch, 1, size, size), True where pixels are to be filled in;
    `values` holds what else a family draws (e.g. "timesteps" and "noise" for diffusion).
    """

    hole: torch.Tensor
    values: dict[str, torch.Tensor] = field(default_factory=dict)


def noise_like(images: torch.Tensor, kind: str = "normal", generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise images in the valid pixel range [0, 1] (the official code's three kinds).

    normal: randn scaled to the batch's scalar std and shifted to its mean, then clamped;
    uniform: U(0, 1) per pixel; constant: the batch mean everywhere.
    """
    mean, std = images.mean(), images.std()
    if kind == "normal":
        draw = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        return (draw * std + mean).clamp(0, 1)
    if kind == "uniform":
        return torch.rand(images.shape, generator=generator, device=images.device, dtype=images.dtype)
    if kind == "constant":
        return torch.full_like(images, float(mean))
    raise UserError(f"unknown noise {kind!r}; choose from: {', '.join(NOISE_KINDS)}")


def check_finite_file(weights: Path) -> None:
    """Refuse a safetensors file holding a NaN or infinite value, naming the tensor."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), "pt") as stored:
            for name in stored.keys():
                tensor = stored.get_tensor(name)
                if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                    raise UserError(f"{weights}: tensor {name} holds NaN or infinite values; the checkpoint is "
                                    "broken, restore it")
    except UserError:
        raise
    except Exception:  # safetensors raises several types for a damaged file
        raise UserError(f"{weights} is not a readable safetensors file; the checkpoint is corrupt, restore it") \
            from None


SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def save_dtype(name: str) -> torch.dtype:
    """The torch type of a --save-dtype value; one line naming the choices otherwise."""
    if name not in SAVE_DTYPES:
        raise UserError(f"unknown --save-dtype {name}; use float32, float16 or bfloat16")
    return SAVE_DTYPES[name]


def stored_dtype(folder: Path) -> str:
    """The floating-point type a checkpoint folder stores its weights in (its first floating tensor
    of its top-level safetensors files); "float32" when it names none."""
    from safetensors import safe_open

    names = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
    for weights in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(weights), "pt") as stored:
                for name in stored.keys():
                    kind = stored.get_slice(name).get_dtype()
                    if kind in names:
                        return names[kind]
        except Exception:  # an unreadable file was refused when the model was loaded
            continue
    return "float32"


def load_checked(weights: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Read a safetensors file whose tensors must match `expected` (a state dict) by name and shape
    and be finite; any mismatch is one line that names the first offending tensor."""
    from safetensors.torch import load_file

    try:
        state = load_file(weights)
    except Exception:  # safetensors raises several types for a damaged file
        raise UserError(f"{weights} is not a readable safetensors file; the checkpoint is corrupt, "
                        "restore it") from None
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        name = (missing or unexpected)[0]
        raise UserError(f"{weights} does not match its config.json: {len(missing)} tensor(s) missing, "
                        f"{len(unexpected)} unexpected (first: {name}); restore the checkpoint")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape:
            raise UserError(f"{weights}: tensor {name} has shape {tuple(tensor.shape)}, the config says "
                            f"{tuple(expected[name].shape)}; restore the checkpoint")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UserError(f"{weights}: tensor {name} holds NaN or infinite values; the checkpoint is "
                            "broken, restore it")
    return {name: tensor.float() if tensor.is_floating_point() else tensor for name, tensor in state.items()}


class I2IModel(nn.Module, abc.ABC):
    """An image-to-image model split into a trainable encoder and a frozen rest.

    Images are float tensors in [0, 1] of shape (batch, channels, size, size).
    """

    family: str = ""
    #: the mask the family trains on by default (`train`, `unlearn`)
    default_mask: str = "random:0.75"
    #: what a completion's `steps` means for this family (None: one forward pass, no steps)
    sampler_steps: str | None = None
    #: whether a forget list given a calibration model is deleted image by image by default (method
    #: `calibrated`); False where that was measured to do worse than the unseen level (docs/deletion.md, H6)
    calibrated_deletion: bool = True
    #: whether gradients reach the input pixels (not through a quantizing tokenizer, a sketch's threshold or
    #: JPEG's quantisation)
    pixel_gradients: bool = True
    #: the whole-image degradations (data/degradations.py) the family can learn to invert; none:
    #: it only fills holes (its input keeps the known pixels)
    degradations: tuple[str, ...] = ()
    #: the degradation this checkpoint inverts (a spec such as "sketch"), or None: it fills holes
    degradation: str | None = None

    # -- what the family is made of -------------------------------------------------------------
    @property
    @abc.abstractmethod
    def encoder(self) -> nn.Module:
        """The modules unlearning fine-tunes (one module, or an nn.ModuleDict of several)."""

    @property
    @abc.abstractmethod
    def decoder(self) -> nn.Module:
        """The modules that turn an embedding into the output; they never run in an encoder-only step."""

    @abc.abstractmethod
    def generator_parameters(self) -> list[nn.Parameter]:
        """The parameters whole-model baselines train (never a fixed part: a tokenizer, a fixed table);
        the encoder's trainable parameters are the encoder's among these."""

    @property
    @abc.abstractmethod
    def image_size(self) -> int:
        """Side of the square images the model takes."""

    @property
    @abc.abstractmethod
    def channels(self) -> int:
        """Number of image channels (1 grey, 3 colour)."""

    @property
    def mask_cell(self) -> int:
        """Side in pixels of the cells masks are drawn on (a patch for patch models)."""
        return 1

    @classmethod
    def tiny_settings(cls) -> dict:
        """`from_config` settings of a model small enough for tests (a few seconds on a CPU)."""
        return {}

    # -- what it does ----------------------------------------------------------------------------
    @property
    def training_task(self) -> str:
        """What a step trains on when no mask is given: the checkpoint's degradation, else the family's mask."""
        return self.degradation or self.default_mask

    @property
    def default_task(self) -> str:
        """What evaluation measures when no task is given: the degradation, else the centre hole."""
        return self.degradation or "center"

    @classmethod
    def check_can_learn(cls, spec: str) -> None:
        """Refuse a degradation spec the family cannot learn to invert (its input keeps known pixels)."""
        kind = spec.partition(":")[0]
        if kind not in cls.degradations:
            raise UserError(f"the {cls.family} family fills masked images; it cannot take {kind} inputs: use a "
                            f"family whose input is a whole image (diffusion) for {kind}")

    def check_task(self, spec: str) -> None:
        """Refuse a task (a mask or degradation spec) this checkpoint cannot do, in one line."""
        from ..data.degradations import canonical, check_degradation, is_degradation
        from ..data.masks import parse_task

        parse_task(spec)
        if is_degradation(spec):
            self.check_can_learn(spec)
            check_degradation(spec, self.image_size, self.channels)
            if self.degradation is None:
                raise UserError(f"this checkpoint fills holes and was not trained for {spec}; train one with "
                                f"`i2i-unlearn train --family {self.family} --task {spec}`, or give a mask task")
            if canonical(spec) != canonical(self.degradation):
                raise UserError(f"this checkpoint was trained for {self.degradation}, not {spec}; give --task "
                                f"{self.degradation} (or leave --task out)")
        elif self.degradation is not None:
            raise UserError(f"this checkpoint turns {self.degradation} inputs into images and has no hole to fill; "
                            f"give --task {self.degradation} (or leave --task and --mask out)")

    # -- one step -------------------------------------------------------------------------------
    def draw(self, images: torch.Tensor, mask: str | None = None,
             generator: torch.Generator | None = None) -> Draw:
        """What one step draws at random for `images`: by default the hole only."""
        from ..data import make_mask

        hole = make_mask(mask or self.training_task, images.shape[0], self.image_size, self.mask_cell, generator)
        return Draw(hole.to(images.device))

    @abc.abstractmethod
    def embed(self, images: torch.Tensor, draw: Draw, encoder: nn.Module | None = None) -> list[torch.Tensor]:
        """The encoder's embedding of `images` under `draw`; `encoder` swaps in another copy (the teacher).

        Each tensor has its rows first: per image (a feature map), or per position the encoder
        saw (the kept tokens of every image)."""

    def embed_noise(self, images: torch.Tensor, draw: Draw, noise: str = "normal",
                    encoder: nn.Module | None = None) -> list[torch.Tensor]:
        """The embedding that forgetting `images` aims at: the encoder's embedding of a noise image
        under the same draw (noise images of the kind `noise`, drawn fresh)."""
        return self.embed(noise_like(images, noise), draw, encoder)

    @staticmethod
    def embedding_distance(student: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        """Mean squared error per tensor, summed over the tensors."""
        return sum(F.mse_loss(a, b) for a, b in zip(student, target, strict=True))

    def forget_embedding(self, embedding: list[torch.Tensor]) -> list[torch.Tensor]:
        """The part of an embedding that the forget term of the paper's method moves: all of it by
        default (the retain term always compares all of it)."""
        return embedding

    def forget_distance(self, student: list[torch.Tensor], target: list[torch.Tensor]) -> torch.Tensor:
        """`embedding_distance` over the part `forget_embedding` selects."""
        return self.embedding_distance(self.forget_embedding(student), self.forget_embedding(target))

    @abc.abstractmethod
    def predict(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The model's one training forward pass on `images` under `draw` (e.g. predicted noise)."""

    @abc.abstractmethod
    def task_target(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """What `predict` should output for `images` under `draw`."""

    @abc.abstractmethod
    def prediction_loss(self, prediction: torch.Tensor, target: torch.Tensor, draw: Draw,
                        reduction: str = "mean") -> torch.Tensor:
        """The family's loss between a prediction and a target over the hole (per image with "none")."""

    def task_loss(self, images: torch.Tensor, draw: Draw, reduction: str = "mean") -> torch.Tensor:
        """The family's training loss on `images` under `draw`."""
        return self.prediction_loss(self.predict(images, draw), self.task_target(images, draw), draw, reduction)

    def noise_task_loss(self, images: torch.Tensor, draw: Draw, noise: str = "normal") -> torch.Tensor:
        """The task loss with noise as the target for `images` (the Noisy Label baseline)."""
        return self.prediction_loss(self.predict(images, draw), self.task_target(noise_like(images, noise), draw),
                                    draw)

    # -- completion and checkpoints ---------------------------------------------------------------
    @abc.abstractmethod
    def complete(self, images: torch.Tensor, hole: torch.Tensor, generator: torch.Generator | None = None,
                 steps: int | None = None) -> torch.Tensor:
        """Fill the hole: known pixels are kept, hole pixels predicted, values in [0, 1].

        `generator` makes a sampling family's completion reproducible; `steps` is its number of
        sampling steps (`sampler_steps` says what they are; ignored by one-pass families).
        """

    def membership_scores(self, images: torch.Tensor, hole: torch.Tensor, generator: torch.Generator | None = None,
                          steps: int | None = None) -> torch.Tensor:
        """Per image, how strongly the model seems to know it (higher = more likely a training
        image): by default minus the hole error of its completion (the loss attack)."""
        from ..metrics.pixels import hole_mse

        return -hole_mse(self.complete(images, hole, generator, steps), images, hole)

    def check_steps(self, steps: int | None) -> None:
        """Refuse sampler settings the family cannot honour (one-pass families ignore valid ones)."""
        if steps is not None and steps < 1:
            raise UserError(f"--sampling-steps must be at least 1, not {steps}")

    @abc.abstractmethod
    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Write config.json + weights (safetensors), loadable by `from_pretrained`; never NaN weights."""

    def check_images(self, images: torch.Tensor) -> None:
        """Raise a clear error when images do not have the size and channels the model takes."""
        expected = (self.channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise UserError(f"images of shape {tuple(images.shape[1:])} do not fit this model, which takes "
                            f"{expected}; resize them (the data loaders do) or pass --image-size {self.image_size}")

    def check_finite(self) -> None:
        """Refuse to go on with a model whose weights are not all finite."""
        for name, tensor in self.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise UserError(f"weight {name} holds NaN or infinite values; the model is broken: lower --lr, "
                                "keep --grad-clip, or restore the checkpoint")

    def _train_only(self, parameters: list[nn.Parameter]) -> list[nn.Parameter]:
        """Freeze every parameter but `parameters`, and return them."""
        trainable = {id(p) for p in parameters}
        for parameter in self.parameters():
            parameter.requires_grad_(id(parameter) in trainable)
        return parameters

    def freeze_all_but_encoder(self) -> list[nn.Parameter]:
        """Freeze every parameter outside the encoder and return the encoder's trainable ones."""
        generator = {id(p) for p in self.generator_parameters()}
        return self._train_only([p for p in self.encoder.parameters() if id(p) in generator])

    def freeze_all_but_generator(self) -> list[nn.Parameter]:
        """Freeze every parameter outside the generator and return the generator's trainable ones."""
        return self._train_only(self.generator_parameters())
