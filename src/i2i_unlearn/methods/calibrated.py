"""Sample-level deletion against a calibration model: each listed image ends as known as an image the
model never saw (docs/deletion.md, H6).

A person's photos are deleted when the model knows each of them no better than a model that never
trained on them would. Such a model is at hand where the photos entered by a fine-tune: the model
before it (the "calibration model", the one the calibrated membership attack compares against). Here
the whole generator trains:

- forget term: per listed image, the squared log-ratio of its task loss to `scale` times the
  calibration model's loss on it, under the same draw (hole, timestep, noise), averaged over the
  batch. It is zero when every image is at its own target, and it pulls back an image pushed past
  it as much as it pushes one still memorised: forgotten, not turned to noise. `scale` is the two
  models' ratio of losses on unseen images (set by `unlearn`; 1 until then), so that a model that
  the fine-tune made better or worse overall is held to its own level, not the calibration model's;
- retain term: i2i_max_loss's (the embedding held to the original encoder's and the task loss kept
  low), so neither half of the model drifts on retained images.

Unlike a population target, which a mean over the listed images reaches while the images the attack
ranks first are still memorised, each image has its own target.
"""

from __future__ import annotations

import torch

from ..models import I2IModel
from .i2i_max_loss import I2IMaxLoss

FLOOR = 1e-8  # losses are clamped to this before the logarithm


class Calibrated(I2IMaxLoss):
    name = "calibrated"
    scope = "model"
    needs_calibration = True

    def __init__(self, model: I2IModel, calibration: I2IModel, **settings):
        super().__init__(model, **settings)
        self.calibration = calibration.requires_grad_(False).eval()
        self.register_buffer("scale", torch.tensor(1.0))  # saved with a resumable run's state

    def train(self, mode: bool = True):
        super().train(mode)
        self.calibration.eval()  # a fixed reference, like the teacher
        return self

    def forget_term(self, forget_images, draw, retain_images):
        with torch.no_grad():
            target = self.scale * self.calibration.task_loss(forget_images, draw, reduction="none")
        loss = self.model.task_loss(forget_images, draw, reduction="none")
        return ((loss.clamp(min=FLOOR).log() - target.clamp(min=FLOOR).log()) ** 2).mean()
