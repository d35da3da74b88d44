"""The paper's method (Li et al., ICLR 2024, Eq. 10): encoder-only distillation.

The student encoder E (trainable) is pulled towards the frozen original encoder E0:
on retain images towards E0's embedding of the same input, on forget images towards E0's
embedding of a noise image under the same draw (the family builds its input from the noise image
as from a real one, Eq. 10's E0(T(n))). The forget term compares the part of the embedding the
family names (`forget_embedding`: all of it, except for a UNet, whose deep maps only); the retain
term all of it. The decoder never changes, so forget outputs become what the model makes of
noise, retain outputs stay as they were.
"""

from __future__ import annotations

import torch

from .base import UnlearningMethod


class I2IUnlearning(UnlearningMethod):
    name = "i2i"
    scope = "encoder"

    def forget_term(self, forget_images, draw, retain_images):
        with torch.no_grad():
            target = self.model.embed_noise(forget_images, draw, self.noise, encoder=self.teacher)
        return self.model.forget_distance(self.model.embed(forget_images, draw), target)

    def retain_term(self, retain_images, draw):
        return self.embedding_term(retain_images, draw)
