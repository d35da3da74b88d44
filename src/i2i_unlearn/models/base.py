"""The interface every model family implements, so that every method works with it.

A family wraps one library model and says four things: which module is its encoder, how
the encoder embeds a masked batch, its own training (task) loss, and how it completes a
masked image. Unlearning methods use nothing else.
"""

from __future__ import annotations

import abc
from pathlib import Path

import torch
from torch import nn


class I2IModel(nn.Module, abc.ABC):
    """An image-to-image model split into a trainable encoder and a frozen rest.

    Images are float tensors in [0, 1] of shape (batch, channels, size, size); a hole mask is
    a bool tensor (batch, 1, size, size), True where the model must fill in pixels.
    """

    family: str = ""

    @property
    @abc.abstractmethod
    def encoder(self) -> nn.Module:
        """The part that unlearning fine-tunes; everything else stays frozen."""

    @property
    @abc.abstractmethod
    def image_size(self) -> int:
        """Side of the square images the model takes."""

    @property
    @abc.abstractmethod
    def channels(self) -> int:
        """Number of image channels (1 grey, 3 colour)."""

    @property
    def patch_size(self) -> int:
        """Granularity of masks the model handles exactly (1 for pixel-level models)."""
        return 1

    @abc.abstractmethod
    def embed(self, images: torch.Tensor, hole: torch.Tensor, encoder: nn.Module | None = None) -> torch.Tensor:
        """The encoder's embedding of the masked images; `encoder` swaps in another copy (the teacher)."""

    @abc.abstractmethod
    def task_loss(self, images: torch.Tensor, hole: torch.Tensor, target: torch.Tensor | None = None,
                  reduction: str = "mean") -> torch.Tensor:
        """The family's training loss on masked `images` (against `target`, default the images)."""

    @abc.abstractmethod
    def complete(self, images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """Fill the hole: known pixels are kept, hole pixels predicted, values in [0, 1]."""

    @abc.abstractmethod
    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Write config.json + model.safetensors, loadable by `from_pretrained`."""

    def check_images(self, images: torch.Tensor) -> None:
        """Raise a clear error when images do not have the size and channels the model takes."""
        from ..errors import UserError

        expected = (self.channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise UserError(f"images of shape {tuple(images.shape[1:])} do not fit this model, which takes "
                            f"{expected}; resize them (the data loaders do) or pass --image-size {self.image_size}")

    def freeze_all_but_encoder(self) -> list[nn.Parameter]:
        """Freeze every parameter outside the encoder and return the encoder's trainable ones."""
        trainable = {id(p) for p in self.encoder.parameters() if p.requires_grad}
        for parameter in self.parameters():
            parameter.requires_grad_(id(parameter) in trainable)
        return [p for p in self.encoder.parameters() if p.requires_grad]
