"""The VQ tokenizer of the VQ-GAN family: a diffusers `VQModel`, trained here as a VQ-GAN.

Objective per step (van den Oord et al. 2017; Esser et al. 2021):

    reconstruction (L1 + MSE, pixels in [-1, 1])
    + codebook loss  ||sg[z] - z_q||^2          (moves the codes towards the encoder outputs)
    + 0.25 * commitment ||z - sg[z_q]||^2      (keeps the encoder near its codes)
    + adversarial_weight * hinge generator loss of a small patch discriminator (optional,
      from `adversarial_start` of the steps on)

We compute the two VQ terms ourselves from the quantizer's indices: diffusers' `VectorQuantizer`
in its default (legacy) mode weights them the other way round. Codes that no image used over
the last `restart_every` steps are moved onto random encoder outputs of the current batch
(dead-code restart), so that a small codebook is used, not collapsed to a few entries.

A GAN has two optimisers, so the tokenizer trains with this loop of its own; everything else
trains with `engine.run`. Once trained, the tokenizer is frozen: no unlearning method touches it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import VQModel
from torch import nn

from . import engine
from .errors import UserError, check_number

COMMITMENT = 0.25


def make_tokenizer(image_size: int = 32, channels: int = 1, codebook_size: int = 256, latent_channels: int = 16,
                   block_out_channels=(16, 32, 64), norm_num_groups: int = 8) -> VQModel:
    """A fresh VQ tokenizer: each down block but the last halves the side (3 blocks: 4x4-pixel tokens)."""
    if any(width % norm_num_groups for width in block_out_channels):
        raise UserError(f"every entry of tokenizer_channels must be a multiple of {norm_num_groups}")
    factor = 2 ** (len(block_out_channels) - 1)
    if image_size % factor:
        raise UserError(f"image size {image_size} is not a multiple of the tokenizer's downsampling {factor}")
    if codebook_size < 2:
        raise UserError(f"codebook_size must be at least 2, not {codebook_size}")
    levels = len(block_out_channels)
    return VQModel(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * levels,
                   up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=tuple(block_out_channels),
                   layers_per_block=1, latent_channels=latent_channels, sample_size=image_size,
                   num_vq_embeddings=codebook_size, norm_num_groups=norm_num_groups, vq_embed_dim=latent_channels,
                   mid_block_add_attention=False)


def quantize(tokenizer: VQModel, images: torch.Tensor):
    """(pre-quantization latents z, quantized z_q with straight-through gradient, indices (B, h*w))."""
    z = tokenizer.encode(images * 2 - 1).latents
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    indices = torch.cdist(flat, tokenizer.quantize.embedding.weight).argmin(dim=1)
    z_q = tokenizer.quantize.embedding(indices).view(z.shape[0], z.shape[2], z.shape[3], -1).permute(0, 3, 1, 2)
    return z, z_q, indices.view(z.shape[0], -1)


def decode_codes(tokenizer: VQModel, z_q: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] (unclamped) from quantized latents."""
    return (tokenizer.decode(z_q, force_not_quantize=True).sample + 1) / 2


def decode_indices(tokenizer: VQModel, indices: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] from token indices (B, h*w) on a square grid."""
    grid = math.isqrt(indices.shape[1])
    z_q = tokenizer.quantize.embedding(indices).view(indices.shape[0], grid, grid, -1).permute(0, 3, 1, 2)
    return decode_codes(tokenizer, z_q).clamp(0, 1)


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: one real/fake logit per image region."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.GroupNorm(8, 2 * width), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images * 2 - 1)


@dataclass
class TokenizerConfig:
    steps: int = 3000
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 100
    adversarial_weight: float = 0.1
    adversarial_start: float = 0.5  # fraction of the steps before the discriminator joins
    restart_every: int = 100

    def check(self) -> None:
        for flag in ("steps", "batch_size", "restart_every"):
            if getattr(self, flag) < 1:
                raise UserError(f"tokenizer {flag} must be at least 1, not {getattr(self, flag)}")
        check_number("tokenizer lr", self.lr, 0, inclusive=False)
        check_number("tokenizer adversarial_weight", self.adversarial_weight, 0)
        check_number("tokenizer adversarial_start", self.adversarial_start, 0, high=1)


def train_tokenizer(tokenizer: VQModel, dataset, config: TokenizerConfig, seed: int = 0,
                    log_every: int = 100) -> list[dict]:
    """Train `tokenizer` in place on `dataset` (images in [0, 1]); returns the logged history."""
    config.check()
    torch.manual_seed(seed)
    tokenizer.requires_grad_(True)
    channels = tokenizer.config.in_channels
    codebook = tokenizer.quantize.embedding.weight
    discriminator = PatchDiscriminator(channels) if config.adversarial_weight > 0 else None
    settings = engine.OptimConfig(steps=config.steps, lr=config.lr, warmup_steps=config.warmup_steps,
                                  schedule="cosine")
    optimizers = [torch.optim.Adam(tokenizer.parameters(), lr=config.lr, betas=(0.5, 0.9))]
    if discriminator is not None:
        optimizers.append(torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=(0.5, 0.9)))
    adversarial_from = int(config.adversarial_start * config.steps)
    stream = engine.forever(engine.loader(dataset, config.batch_size, seed))
    usage = torch.zeros(codebook.shape[0])
    history, running, started, codes_used = [], {}, time.time(), None
    tokenizer.train()
    for step in range(config.steps):
        for optimizer in optimizers:  # warm-up, then cosine decay, for both networks
            for group in optimizer.param_groups:
                group["lr"] = config.lr * engine.lr_factor(step, settings)
        images = next(stream)[0]
        z, z_q, indices = quantize(tokenizer, images)
        usage += torch.bincount(indices.flatten(), minlength=codebook.shape[0])
        reconstruction = decode_codes(tokenizer, z + (z_q - z).detach())
        losses = {"reconstruction": F.l1_loss(reconstruction, images) + F.mse_loss(reconstruction, images),
                  "codebook": F.mse_loss(z_q, z.detach()),
                  "commitment": COMMITMENT * F.mse_loss(z, z_q.detach())}
        adversarial = discriminator is not None and step >= adversarial_from
        if adversarial:
            losses["generator"] = config.adversarial_weight * -discriminator(reconstruction).mean()
        total = sum(losses.values())
        optimizers[0].zero_grad(set_to_none=True)
        total.backward()
        nn.utils.clip_grad_norm_(tokenizer.parameters(), 1.0)
        optimizers[0].step()
        if adversarial:  # hinge loss on real images and on this step's reconstructions
            real, fake = discriminator(images), discriminator(reconstruction.detach())
            loss_d = F.relu(1 - real).mean() + F.relu(1 + fake).mean()
            optimizers[1].zero_grad(set_to_none=True)
            loss_d.backward()
            optimizers[1].step()
            losses["discriminator"] = loss_d
        for key, value in losses.items():
            running[key] = running.get(key, 0.0) + float(value.detach())
        if not math.isfinite(float(total.detach())):
            raise UserError(f"the tokenizer's loss became {float(total.detach())} at step {step + 1}; lower its lr")
        if (step + 1) % config.restart_every == 0:
            dead = usage == 0
            if dead.any() and step + 1 < 0.9 * config.steps:
                flat = z.detach().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
                picks = torch.randint(0, flat.shape[0], (int(dead.sum()),))
                with torch.no_grad():
                    codebook[dead] = flat[picks] + 0.01 * torch.randn_like(flat[picks])
            codes_used = int((usage > 0).sum())
            usage.zero_()
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            count = (step % log_every) + 1
            entry = {"step": step + 1, "seconds": round(time.time() - started, 1),
                     **{key: round(value / count, 5) for key, value in running.items()},
                     "codes_used_last_window": codes_used}
            history.append(entry)
            print("tokenizer", entry, flush=True)
            running = {}
    tokenizer.requires_grad_(False).eval()
    return history


@torch.no_grad()
def tokenizer_quality(tokenizer: VQModel, images: torch.Tensor, batch_size: int = 256) -> dict:
    """Reconstruction MSE ([0, 1] pixels) and codebook usage of a frozen tokenizer on `images`."""
    errors, used = [], torch.zeros(tokenizer.config.num_vq_embeddings, dtype=torch.bool)
    for start in range(0, images.shape[0], batch_size):
        batch = images[start:start + batch_size]
        _, z_q, indices = quantize(tokenizer, batch)
        errors.append(((decode_codes(tokenizer, z_q).clamp(0, 1) - batch) ** 2).mean(dim=(1, 2, 3)))
        used[indices.unique()] = True
    return {"reconstruction_mse": round(float(torch.cat(errors).mean()), 6), "codes_used": int(used.sum()),
            "codebook_size": int(used.numel())}


__all__ = ["make_tokenizer", "quantize", "decode_codes", "decode_indices", "TokenizerConfig", "train_tokenizer",
           "tokenizer_quality"]
