"""Baseline Random Encoder: encoder-only, like the paper's method, but the forget target is
random noise in embedding space: randn * std + mean of the teacher's embedding, per tensor."""

from __future__ import annotations

import torch

from .base import UnlearningMethod


class RandomEncoder(UnlearningMethod):
    name = "random_encoder"
    scope = "encoder"

    def forget_term(self, forget_images, draw, retain_images):
        with torch.no_grad():
            reference = self.model.embed(forget_images, draw, encoder=self.teacher)
            target = [torch.randn_like(tensor) * tensor.std() + tensor.mean() for tensor in reference]
        return self.model.embedding_distance(self.model.embed(forget_images, draw), target)

    def retain_term(self, retain_images, draw):
        return self.embedding_term(retain_images, draw)
