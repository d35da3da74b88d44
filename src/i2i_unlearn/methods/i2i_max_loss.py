"""The paper's objective and Max Loss at once, on the whole generator: forgetting that a short
fine-tune does not undo (docs/relearning.md).

The paper's method moves the encoder only: forget images are embedded like noise, but the decoder
still draws the forgotten content, and a few fine-tuning steps re-route the encoder back to it (the
relearning probe). Here the whole generator trains:

- forget term: the paper's (the encoder's embedding of a forget image pulled to the original
  encoder's embedding of noise) minus the family's task loss on the forget images (Max Loss), so the
  decoder loses what it drew from them too;
- retain term: the embedding held to the original encoder's and the task loss kept low, so neither
  half of the model drifts on retained images.

The task-loss ascent is unbounded below; the controller (retain budget) is what holds it, and the
engine's gradient clipping keeps each step finite.
"""

from __future__ import annotations

from .i2i import I2IUnlearning


class I2IMaxLoss(I2IUnlearning):
    name = "i2i_max_loss"
    scope = "model"

    def forget_term(self, forget_images, draw, retain_images):
        return super().forget_term(forget_images, draw, retain_images) - self.task_term(forget_images, draw)

    def retain_term(self, retain_images, draw):
        return self.embedding_term(retain_images, draw) + self.task_term(retain_images, draw)
