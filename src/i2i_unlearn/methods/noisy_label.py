"""Baseline Noisy Label: train the generator so that its output on forget images is noise
(the family says what that means: a noise image for an MAE; for diffusion, pure noise in the
hole as input and that noise as the target)."""

from __future__ import annotations

from .base import UnlearningMethod


class NoisyLabel(UnlearningMethod):
    name = "noisy_label"
    scope = "model"

    def forget_term(self, forget_images, draw, retain_images):
        return self.model.noise_task_loss(forget_images, draw, self.noise)

    def retain_term(self, retain_images, draw):
        return self.task_term(retain_images, draw)
