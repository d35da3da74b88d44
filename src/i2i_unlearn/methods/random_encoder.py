"""Baseline Random Encoder: encoder-only, like the paper's method, but the forget target is
random noise in embedding space (randn * std + mean of the teacher's embeddings)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import UnlearningMethod


class RandomEncoder(UnlearningMethod):
    name = "random_encoder"
    scope = "encoder"

    def forget_term(self, forget_images, retain_images):
        hole = self.hole(forget_images)
        with torch.no_grad():
            reference = self.model.embed(forget_images, hole, encoder=self.teacher)
            target = torch.randn_like(reference) * reference.std() + reference.mean()
        return F.mse_loss(self.model.embed(forget_images, hole), target)

    def retain_term(self, retain_images):
        return self.embedding_term(retain_images)
