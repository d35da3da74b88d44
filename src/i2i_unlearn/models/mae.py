"""Masked autoencoder family on Hugging Face transformers' `ViTMAEForPreTraining`.

Encoder = `model.vit` (patch embedding, ViT blocks over the visible patches, final norm);
decoder = `model.decoder`; the embedding compared is the encoder's output sequence (class token
and visible patches). Masks are drawn on the patch grid; the default training mask hides a
random 75% of the patches, as MAE pre-training does. Completion runs the MAE with the hole's patches masked and
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
from .base import Draw, I2IModel, check_finite_file


def _sincos_table(grid: int, dim: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos position table (with a zero row for the CLS token), (1, 1+grid^2, dim)."""
    from transformers.models.vit_mae.modeling_vit_mae import build_2d_sinusoidal_position_embedding

    table = build_2d_sinusoidal_position_embedding(height=grid, width=grid, embed_dim=dim, cls_token=True)
    # The original MAE stores the two halves swapped; pretrained checkpoints use that layout.
    half = table.shape[-1] // 2
    return torch.cat([table[..., half:], table[..., :half]], dim=-1).reshape(1, -1, dim)


def _check_shapes(folder: Path, weights: Path) -> None:
    """Refuse, naming the first tensor and both shapes, weights whose sizes differ from what the
    folder's config.json builds (transformers says only that a report it hid has the details)."""
    from safetensors import safe_open

    try:
        config = ViTMAEConfig.from_pretrained(str(folder))
        with torch.device("meta"):
            expected = ViTMAEForPreTraining(config).state_dict()
        with safe_open(str(weights), framework="pt") as stored:
            shapes = {name: tuple(stored.get_slice(name).get_shape()) for name in stored.keys()}
    except Exception:  # an unreadable config or file: the caller's message says so
        return
    for name, shape in sorted(shapes.items()):
        if name in expected and tuple(expected[name].shape) != shape:
            raise UserError(f"{weights}: tensor {name} has shape {shape}, but config.json (hidden_size "
                            f"{config.hidden_size}, patch_size {config.patch_size}, image_size {config.image_size}) "
                            f"makes it {tuple(expected[name].shape)}; restore the checkpoint or its config.json")


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
        weights = folder / "model.safetensors"
        if weights.is_file():  # finiteness first: NaN weights must never reach linear algebra
            check_finite_file(weights)
        from transformers.utils import logging as hf_logging

        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # our one-line errors replace the library's warnings
        try:
            hf_model, info = ViTMAEForPreTraining.from_pretrained(str(folder), dtype=torch.float32,
                                                                  output_loading_info=True)
        except Exception as exc:  # transformers raises many types for a broken folder
            _check_shapes(folder, weights)  # a tensor of another size than config.json says: name it
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot load MAE checkpoint {folder}: {reason[:200]}; pass a folder written by "
                            "save_pretrained (config.json + model.safetensors)") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        missing, unexpected = sorted(info.get("missing_keys", [])), sorted(info.get("unexpected_keys", []))
        mismatched = info.get("mismatched_keys") or []
        if missing or unexpected or mismatched:
            first = (missing or unexpected or [str(mismatched[0])])[0]
            raise UserError(f"{folder} does not match its config.json: {len(missing)} tensor(s) missing, "
                            f"{len(unexpected)} unexpected, {len(mismatched)} of another shape (first: {first}); "
                            "restore the checkpoint")
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
        self.check_finite()
        self.hf.config.i2i_family = self.family
        self.hf.config.i2i_image_mean = self.pixel_mean.flatten().tolist()
        self.hf.config.i2i_image_std = self.pixel_std.flatten().tolist()
        self.hf.config.mask_ratio = self._saved_mask_ratio
        # Cast a copy of the weights, never the live model (a float16 save must not round it).
        state = {name: tensor.detach().to(dtype) for name, tensor in self.hf.state_dict().items()}
        self.hf.save_pretrained(str(folder), state_dict=state, safe_serialization=True)

    # -- the family interface -----------------------------------------------------------------
    @property
    def encoder(self) -> nn.Module:
        return self.hf.vit

    @property
    def decoder(self) -> nn.Module:
        return self.hf.decoder

    def generator_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the two fixed sin-cos position tables."""
        fixed = {id(self.hf.vit.embeddings.position_embeddings), id(self.hf.decoder.decoder_pos_embed)}
        return [p for p in self.hf.parameters() if id(p) not in fixed]

    @property
    def image_size(self) -> int:
        return int(self.hf.config.image_size)

    @property
    def channels(self) -> int:
        return int(self.hf.config.num_channels)

    @property
    def mask_cell(self) -> int:
        return int(self.hf.config.patch_size)

    @classmethod
    def tiny_settings(cls) -> dict:
        return {"patch_size": 4, "hidden_size": 32, "depth": 2, "heads": 2, "decoder_hidden_size": 32,
                "decoder_depth": 1, "decoder_heads": 2}

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        self.check_images(images)
        return (images - self.pixel_mean) / self.pixel_std

    def _patch_mask(self, hole: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which patches the MAE hides (B, L) as floats: every patch touching the hole.

        ViTMAE hides the same number of patches in every image of a batch; where holes differ
        in size, a few more visible patches (chosen at random) are hidden too. They are
        predicted like the rest; completion pastes only the hole.
        """
        patches = F.max_pool2d(hole.float(), self.mask_cell).flatten(1)
        counts = patches.sum(1)
        target = int(counts.max())
        if target == 0:
            raise UserError("the mask leaves no hole to fill; use a mask that hides part of the image")
        if target == patches.shape[1]:
            raise UserError("the mask hides every patch, so the model has nothing to go on; keep some pixels")
        if not torch.all(counts == target):
            scores = torch.rand(patches.shape, generator=generator).to(patches.device) + 2 * patches
            order = scores.argsort(dim=1, descending=True)
            patches = torch.zeros_like(patches).scatter_(1, order[:, :target], 1.0)
        return patches

    def _noise(self, patch_mask: torch.Tensor, config) -> torch.Tensor:
        """MAE masking noise (lowest = kept) that hides exactly `patch_mask`; sets config.mask_ratio to match."""
        # ViTMAE keeps int(L * (1 - mask_ratio)) patches; the half-patch margin makes that exact.
        config.mask_ratio = (float(patch_mask[0].sum()) - 0.5) / patch_mask.shape[1]
        return patch_mask

    def draw(self, images, mask=None, generator=None) -> Draw:
        draw = super().draw(images, mask, generator)
        draw.values["patch_mask"] = self._patch_mask(draw.hole, generator)
        return draw

    def embed(self, images, draw, encoder=None):
        encoder = encoder if encoder is not None else self.hf.vit
        noise = self._noise(draw.values["patch_mask"], encoder.config)
        return [encoder(pixel_values=self._normalise(images), noise=noise).last_hidden_state]

    def _forward(self, images: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """Predicted patches (B, L, patch pixels) in normalised pixel space."""
        noise = self._noise(patch_mask, self.hf.config)
        return self.hf(pixel_values=self._normalise(images), noise=noise).logits

    def predict(self, images, draw):
        return self._forward(images, draw.values["patch_mask"])

    def task_target(self, images, draw):
        target = self.hf.patchify(self._normalise(images))
        if self.hf.config.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        return target

    def prediction_loss(self, prediction, target, draw, reduction="mean"):
        """Mean squared error on the hidden patches (the MAE objective), in normalised pixels."""
        mask = draw.values["patch_mask"]
        per_patch = ((prediction - target) ** 2).mean(dim=-1)
        per_image = (per_patch * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_image.mean() if reduction == "mean" else per_image

    @torch.no_grad()
    def complete(self, images, hole, generator=None, steps=None):
        """One forward pass with the hole's patches hidden; the prediction is pasted into the hole."""
        patch_mask = self._patch_mask(hole, generator)
        logits = self._forward(images, patch_mask)
        if self.hf.config.norm_pix_loss:
            # Predictions are per-patch normalised; restore them with the visible pixels' statistics.
            visible = self.hf.patchify(self._normalise(images))
            keep = (1 - patch_mask).unsqueeze(-1)
            count = keep.sum(1, keepdim=True) * visible.shape[-1]
            mean = (visible * keep).sum((1, 2), keepdim=True) / count
            std = (((visible - mean) ** 2 * keep).sum((1, 2), keepdim=True) / count).sqrt()
            logits = logits * std + mean
        predicted = self.hf.unpatchify(logits, (self.image_size, self.image_size))
        predicted = (predicted * self.pixel_std + self.pixel_mean).clamp(0, 1)
        return torch.where(hole, predicted, images)
