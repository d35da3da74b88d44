"""The interface every unlearning method implements.

A method is an objective for the shared loop (`engine.run`): given a forget batch and a
retain batch it returns

    loss = retain_alpha * retain_term(retain images) + forget_alpha * forget_term(forget images)

Each step draws once per batch what the model family draws at random (the hole, a diffusion
timestep and its noise, ...): the student, the teacher and any other copy see the same draw.
Each term sees only its own samples, by construction. A method also says which parameters it
trains: the family's encoder only, or the family's generator (the whole model but its fixed
parts, such as a tokenizer).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ..errors import UserError
from ..models import NOISE_KINDS, Draw, I2IModel, noise_like


class UnlearningMethod(nn.Module):
    """Base class: subclasses define `forget_term`, `retain_term` and `scope`."""

    name: str = ""
    scope: str = "encoder"  # "encoder": only the encoder trains; "model": the family's generator trains
    needs_calibration: bool = False  # built with a calibration model (one that never trained on the forget images)

    def __init__(self, model: I2IModel, mask: str | None = None, forget_alpha: float = 0.2,
                 retain_alpha: float = 1.0, noise: str = "normal"):
        super().__init__()
        if noise not in NOISE_KINDS:
            raise UserError(f"unknown noise {noise!r}; choose from: {', '.join(NOISE_KINDS)}")
        self.model = model
        self.mask = mask or model.training_task
        self.forget_alpha = forget_alpha
        self.retain_alpha = retain_alpha
        self.noise = noise
        # The frozen original encoder ("teacher"): a copy of exactly the encoder's modules.
        self.teacher = copy.deepcopy(model.encoder).requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # the teacher is a fixed reference, never in training mode
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Freeze what the method must not change and return what it trains."""
        if self.scope == "encoder":
            return self.model.freeze_all_but_encoder()
        return self.model.freeze_all_but_generator()

    def draw(self, images: torch.Tensor) -> Draw:
        """This step's random draw for a batch (shared by every model that sees the batch)."""
        return self.model.draw(images, self.mask)

    def forget_term(self, forget_images: torch.Tensor, draw: Draw, retain_images: torch.Tensor) -> torch.Tensor:
        """The loss on forget samples under `draw`. `retain_images` may only serve to build a target
        under no_grad (Retain Label); the term is computed on the forget samples."""
        raise NotImplementedError

    def retain_term(self, retain_images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The loss on retain samples only."""
        raise NotImplementedError

    # Shared terms ---------------------------------------------------------------------------
    def embedding_term(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """Distance between the student's and the teacher's embeddings of `images` under one draw."""
        with torch.no_grad():
            target = self.model.embed(images, draw, encoder=self.teacher)
        return self.model.embedding_distance(self.model.embed(images, draw), target)

    def task_term(self, images: torch.Tensor, draw: Draw) -> torch.Tensor:
        """The family's own training loss on `images` under `draw`."""
        return self.model.task_loss(images, draw)

    def forward(self, batch: dict[str, torch.Tensor]):
        forget_images, retain_images = batch["forget"], batch["retain"]
        forget = self.forget_term(forget_images, self.draw(forget_images), retain_images)
        retain = self.retain_term(retain_images, self.draw(retain_images))
        loss = self.retain_alpha * retain + self.forget_alpha * forget
        return loss, {"forget_term": forget.detach(), "retain_term": retain.detach()}


__all__ = ["UnlearningMethod", "NOISE_KINDS", "noise_like"]
