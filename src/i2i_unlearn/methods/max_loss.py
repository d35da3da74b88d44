"""Baseline Max Loss: train the generator to keep its task loss low on retain images and push
it up on forget images (loss = L_task(retain) - alpha * L_task(forget))."""

from __future__ import annotations

from .base import UnlearningMethod


class MaxLoss(UnlearningMethod):
    name = "max_loss"
    scope = "model"

    def forget_term(self, forget_images, draw, retain_images):
        return -self.task_term(forget_images, draw)  # unbounded below: gradient clipping keeps steps finite

    def retain_term(self, retain_images, draw):
        return self.task_term(retain_images, draw)
