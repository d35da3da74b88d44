"""Baseline Retain Label: train the whole model so that a forget image's completion becomes
the original model's completion of a retain image."""

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

    def forget_term(self, forget_images, retain_images):
        with torch.no_grad():
            # Pair each forget image with a retain image; the target is the frozen original's output.
            count = forget_images.shape[0]
            donors = retain_images[torch.arange(count, device=retain_images.device) % retain_images.shape[0]]
            target = self.original.complete(donors, self.hole(donors))
        return self.task_term(forget_images, target=target)

    def retain_term(self, retain_images):
        return self.task_term(retain_images)
