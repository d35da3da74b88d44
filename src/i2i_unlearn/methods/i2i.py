"""The paper's method (Li et al., ICLR 2024, Eq. 10): encoder-only distillation.

The student encoder E (trainable) is pulled towards the frozen original encoder E0:
on retain images towards E0's embedding of the same masked image, on forget images
towards E0's embedding of a noise image under the same mask. The decoder never changes,
so forget outputs become what the model makes of noise, retain outputs stay as they were.
"""

from __future__ import annotations

from .base import UnlearningMethod, noise_like


class I2IUnlearning(UnlearningMethod):
    name = "i2i"
    scope = "encoder"

    def forget_term(self, forget_images, retain_images):
        return self.embedding_term(forget_images, target_images=noise_like(forget_images, self.noise))

    def retain_term(self, retain_images):
        return self.embedding_term(retain_images)
