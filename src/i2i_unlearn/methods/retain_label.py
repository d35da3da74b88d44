"""Baseline Retain Label: train the generator so that its output on a forget sample becomes the
original model's output on a retain sample (one forward pass under the same draw: predicted
patches for an MAE, the predicted noise for diffusion; never a whole sampling loop)."""

from __future__ import annotations

import copy

import torch

from .base import UnlearningMethod


class RetainLabel(UnlearningMethod):
    name = "retain_label"
    scope = "model"

    def __init__(self, model, **settings):
        super().__init__(model, **settings)
        self.original = copy.deepcopy(model).requires_grad_(False).eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.original.eval()
        return self

    def forget_term(self, forget_images, draw, retain_images):
        with torch.no_grad():
            # Pair each forget image with a retain image; the target is the frozen original's output.
            count = forget_images.shape[0]
            donors = retain_images[torch.arange(count, device=retain_images.device) % retain_images.shape[0]]
            target = self.original.predict(donors, draw)
        return self.model.prediction_loss(self.model.predict(forget_images, draw), target, draw)

    def retain_term(self, retain_images, draw):
        return self.task_term(retain_images, draw)
