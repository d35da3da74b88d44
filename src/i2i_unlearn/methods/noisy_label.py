"""Baseline Noisy Label: train the whole model to complete forget images with noise."""

from __future__ import annotations

from .base import UnlearningMethod, noise_like


class NoisyLabel(UnlearningMethod):
    name = "noisy_label"
    scope = "model"

    def forget_term(self, forget_images, retain_images):
        return self.task_term(forget_images, target=noise_like(forget_images, self.noise))

    def retain_term(self, retain_images):
        return self.task_term(retain_images)
