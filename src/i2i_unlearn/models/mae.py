"""Masked autoencoder family on Hugging Face transformers' `ViTMAEForPreTraining`.

Encoder = `model.vit` (patch embedding, ViT blocks over the visible patches, final norm);
decoder = `model.decoder`. Completion runs the MAE with the hole's patches masked and
pastes the prediction into the hole. Checkpoints are `save_pretrained` folders, the format
of the public facebook/vit-mae-* checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import ViTMAEConfig, ViTMAEForPreTraining

from ..errors import UserError
from .base import I2IModel


def _sincos_table(grid: int, dim: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position table (with a zero row for the CLS token), (1, 1+grid^2, dim)."""
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    table = build_2d_sinusoidal_position_embedding(height=grid, width=grid, embed_dim=dim, cls_token=True)
    # The original MAE stores the two halves swapped; pretrained checkpoints use that layout.
    half = table.shape[-1] // 2
    return torch.cat([table[..., half:], table[..., :half]], dim=-1).reshape(1, -1, dim)


class MAEModel(I2IModel):
    """A ViT masked autoencoder used as an inpainting / outpainting model."""

    family = "mae"

    def __init__(self, hf_model: ViTMAEForPreTraining, image_mean=None, image_std=None):
        super().__init__()
        self.hf = hf_model
        config = hf_model.config
        # Each call sets config.mask_ratio to its own mask; checkpoints keep the trained value.
        self._saved_mask_ratio = config.mask_ratio
        channels = config.num_channels
        mean = image_mean if image_mean is not None else getattr(config, "i2i_image_mean", [0.5] * channels)
        std = image_std if image_std is not None else getattr(config, "i2i_image_std", [0.5] * channels)
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

    # -- construction and checkpoints -------------------------------------------------------
    @classmethod
    def from_config(cls, image_size: int = 32, channels: int = 1, patch_size: int = 4, hidden_size: int = 192,
                    depth: int = 6, heads: int = 3, decoder_hidden_size: int = 128, decoder_depth: int = 2,
                    decoder_heads: int = 4, mlp_ratio: int = 4, mask_ratio: float = 0.75) -> "MAEModel":
        """A freshly initialised MAE. Pixels are normalised with mean 0.5, std 0.5."""
        if image_size % patch_size:
            raise UserError(f"image size {image_size} is not a multiple of the patch size {patch_size}; "
                            f"pick an image size like {image_size - image_size % patch_size or patch_size}")
        config = ViTMAEConfig(
            image_size=image_size, patch_size=patch_size, num_channels=channels, hidden_size=hidden_size,
            num_hidden_layers=depth, num_attention_heads=heads, intermediate_size=hidden_size * mlp_ratio,
            decoder_hidden_size=decoder_hidden_size, decoder_num_hidden_layers=decoder_depth,
            decoder_num_attention_heads=decoder_heads, decoder_intermediate_size=decoder_hidden_size * mlp_ratio,
            mask_ratio=mask_ratio, norm_pix_loss=False)
        config.i2i_image_mean = [0.5] * channels
        config.i2i_image_std = [0.5] * channels
        hf_model = ViTMAEForPreTraining(config)
        # Built from a config (not loaded), transformers leaves both fixed position tables at
        # zero; without them the model cannot tell where a patch is. Fill them in, frozen.
        grid = image_size // patch_size
        with torch.no_grad():
            hf_model.vit.embeddings.position_embeddings.copy_(_sincos_table(grid, hidden_size))
            hf_model.decoder.decoder_pos_embed.copy_(_sincos_table(grid, decoder_hidden_size))
        hf_model.vit.embeddings.position_embeddings.requires_grad_(False)
        hf_model.decoder.decoder_pos_embed.requires_grad_(False)
        return cls(hf_model)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "MAEModel":
        """Load a `save_pretrained` folder (ours or a public ViT-MAE checkpoint), in float32."""
        folder = Path(folder)
        try:
            hf_model = ViTMAEForPreTraining.from_pretrained(str(folder), dtype=torch.float32)
        except Exception as exc:  # transformers raises many types for a broken folder
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load MAE checkpoint {folder}: {reason[:200]}; pass a folder written by "
                            "save_pretrained (config.json + model.safetensors)") from None
        hf_model.float()
        mean = std = None
        processor = folder / "preprocessor_config.json"
        if processor.exists():  # public checkpoints store their normalisation there
            settings = json.loads(processor.read_text())
            mean, std = settings.get("image_mean"), settings.get("image_std")
        for parameter in (hf_model.vit.embeddings.position_embeddings, hf_model.decoder.decoder_pos_embed):
            parameter.requires_grad_(False)
        return cls(hf_model, mean, std)

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
        self.hf.config.i2i_image_mean = self.pixel_mean.flatten().tolist()
        self.hf.config.i2i_image_std = self.pixel_std.flatten().tolist()
        self.hf.config.mask_ratio = self._saved_mask_ratio
        original = next(self.hf.parameters()).dtype
        self.hf.to(dtype)
        try:
            self.hf.save_pretrained(str(folder), safe_serialization=True)
        finally:
            self.hf.to(original)

    # -- the family interface -----------------------------------------------------------------
    @property
    def encoder(self) -> nn.Module:
        return self.hf.vit

    @property
    def image_size(self) -> int:
        return int(self.hf.config.image_size)

    @property
    def channels(self) -> int:
        return int(self.hf.config.num_channels)

    @property
    def patch_size(self) -> int:
        return int(self.hf.config.patch_size)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        self.check_images(images)
        return (images - self.pixel_mean) / self.pixel_std

    def _patch_noise(self, hole: torch.Tensor, config) -> torch.Tensor:
        """MAE masking noise that hides exactly the patches touching the hole (lowest noise = kept)."""
        patches = F.max_pool2d(hole.float(), self.patch_size).flatten(1)
        counts = patches.sum(1)
        if not torch.all(counts == counts[0]):
            raise ValueError("every image in a batch must hide the same number of patches")
        # ViTMAE keeps int(L * (1 - mask_ratio)) patches; the half-patch margin makes that exact.
        length = patches.shape[1]
        config.mask_ratio = (float(counts[0]) - 0.5) / length
        return patches

    def embed(self, images, hole, encoder=None):
        encoder = encoder if encoder is not None else self.hf.vit
        noise = self._patch_noise(hole, encoder.config)
        return encoder(pixel_values=self._normalise(images), noise=noise).last_hidden_state

    def _predict(self, images, hole):
        """Predicted patches (normalised pixel space) and the patch mask."""
        noise = self._patch_noise(hole, self.hf.config)
        output = self.hf(pixel_values=self._normalise(images), noise=noise)
        return output.logits, output.mask

    def task_loss(self, images, hole, target=None, reduction="mean"):
        """Mean squared error on the masked patches (the MAE objective), in normalised pixels."""
        logits, mask = self._predict(images, hole)
        target_patches = self.hf.patchify(self._normalise(images if target is None else target))
        if self.hf.config.norm_pix_loss:
            mean = target_patches.mean(dim=-1, keepdim=True)
            var = target_patches.var(dim=-1, keepdim=True)
            target_patches = (target_patches - mean) / (var + 1.0e-6) ** 0.5
        per_patch = ((logits - target_patches) ** 2).mean(dim=-1)
        per_image = (per_patch * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_image.mean() if reduction == "mean" else per_image

    @torch.no_grad()
    def complete(self, images, hole):
        logits, mask = self._predict(images, hole)
        if self.hf.config.norm_pix_loss:
            # Predictions are per-patch normalised; restore them with the visible pixels' statistics.
            visible = self.hf.patchify(self._normalise(images))
            keep = (1 - mask).unsqueeze(-1)
            count = keep.sum(1, keepdim=True) * visible.shape[-1]
            mean = (visible * keep).sum((1, 2), keepdim=True) / count
            std = (((visible - mean) ** 2 * keep).sum((1, 2), keepdim=True) / count).sqrt()
            logits = logits * std + mean
        predicted = self.hf.unpatchify(logits, (self.image_size, self.image_size))
        predicted = (predicted * self.pixel_std + self.pixel_mean).clamp(0, 1)
        return torch.where(hole, predicted, images)
