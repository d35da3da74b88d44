"""The interface every unlearning method implements.

A method is an objective for the shared loop (`engine.run`): given a forget batch and a
retain batch it returns

    loss = retain_alpha * retain_term(retain images) + forget_alpha * forget_term(forget images)

Each term sees only its own samples, by construction. A method also says which parameters
it trains: the encoder only, or the whole model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..data import make_mask
from ..errors import UserError
from ..models import I2IModel

NOISE_KINDS = ("normal", "uniform", "constant")


def noise_like(images: torch.Tensor, kind: str = "normal") -> torch.Tensor:
    """Noise images in the valid pixel range [0, 1], drawn fresh on every call.

    normal: randn scaled to the batch's scalar std and shifted to its mean, then clamped;
    uniform: U(0, 1) per pixel; constant: the batch mean everywhere.
    """
    mean, std = images.mean(), images.std()
    if kind == "normal":
        return (torch.randn_like(images) * std + mean).clamp(0, 1)
    if kind == "uniform":
        return torch.rand_like(images)
    if kind == "constant":
        return torch.full_like(images, float(mean))
    raise UserError(f"unknown noise {kind!r}; choose from: {', '.join(NOISE_KINDS)}")


class UnlearningMethod(nn.Module):
    """Base class: subclasses define `forget_term`, `retain_term` and `scope`."""

    name: str = ""
    scope: str = "encoder"  # "encoder": only the encoder trains; "model": every parameter trains

    def __init__(self, model: I2IModel, mask: str = "random:0.75", forget_alpha: float = 0.2,
                 retain_alpha: float = 1.0, noise: str = "normal"):
        super().__init__()
        if noise not in NOISE_KINDS:
            raise UserError(f"unknown noise {noise!r}; choose from: {', '.join(NOISE_KINDS)}")
        self.model = model
        self.mask = mask
        self.forget_alpha = forget_alpha
        self.retain_alpha = retain_alpha
        self.noise = noise
        # The frozen original encoder ("teacher"); every method may compare with it.
        self.teacher = copy.deepcopy(model.encoder).requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher is a fixed reference, never in training mode
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Freeze what the method must not change and return what it trains."""
        if self.scope == "encoder":
            return self.model.freeze_all_but_encoder()
        return [p for p in self.model.parameters() if p.requires_grad]

    def hole(self, images: torch.Tensor) -> torch.Tensor:
        """A fresh training mask for a batch (student and teacher share it within a term)."""
        return make_mask(self.mask, images.shape[0], self.model.image_size, self.model.patch_size).to(images.device)

    def forget_term(self, forget_images: torch.Tensor, retain_images: torch.Tensor) -> torch.Tensor:
        """The loss on forget samples. `retain_images` may only serve to build a target under
        no_grad (Retain Label); the term is computed on the forget samples."""
        raise NotImplementedError

    def retain_term(self, retain_images: torch.Tensor) -> torch.Tensor:
        """The loss on retain samples only."""
        raise NotImplementedError

    # Shared terms ---------------------------------------------------------------------------
    def embedding_term(self, images: torch.Tensor, target_images: torch.Tensor | None = None) -> torch.Tensor:
        """MSE between the student's embedding of `images` and the teacher's embedding of
        `target_images` (default the same images) under one shared mask."""
        hole = self.hole(images)
        with torch.no_grad():
            target = self.model.embed(images if target_images is None else target_images, hole,
                                      encoder=self.teacher)
        return F.mse_loss(self.model.embed(images, hole), target)

    def task_term(self, images: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """The family's own training loss on masked `images` (against `target`, default themselves)."""
        return self.model.task_loss(images, self.hole(images), target=target)

    def forward(self, batch: dict[str, torch.Tensor]):
        forget = self.forget_term(batch["forget"], batch["retain"])
        retain = self.retain_term(batch["retain"])
        loss = self.retain_alpha * retain + self.forget_alpha * forget
        return loss, {"forget_term": forget.detach(), "retain_term": retain.detach()}
