"""The paper's method (Li et al., ICLR 2024, Eq. 10): encoder-only distillation.

The student encoder E (trainable) is pulled towards the frozen original encoder E0:
on retain images towards E0's embedding of the same masked image, on forget images
towards E0's embedding of a noise image under the same mask. The decoder never changes,
so forget outputs become what the model makes of noise, retain outputs stay as they were.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import UnlearningMethod, noise_like


class I2IUnlearning(UnlearningMethod):
    name = "i2i"
    scope = "encoder"

    def forget_term(self, forget_images):
        hole = self.hole(forget_images)
        with torch.no_grad():
            target = self.model.embed(noise_like(forget_images, self.noise), hole, encoder=self.teacher)
        return F.mse_loss(self.model.embed(forget_images, hole), target)

    def retain_term(self, retain_images):
        hole = self.hole(retain_images)
        with torch.no_grad():
            target = self.model.embed(retain_images, hole, encoder=self.teacher)
        return F.mse_loss(self.model.embed(retain_images, hole), target)
