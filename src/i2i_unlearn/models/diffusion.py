"""Diffusion family: Palette-style conditional DDPM inpainting on diffusers' `UNet2DModel`.

The UNet's input is the noisy target, the condition and the hole mask, concatenated on the
channel axis (Saharia et al., "Palette"):

- noisy target: the image noised to timestep t inside the hole, the known pixels outside;
- condition: the known pixels, with N(0, I) noise in the hole;
- mask: 1 in the hole (left out when a loaded UNet has in_channels = 2 x out_channels).

A checkpoint trained for a whole-image degradation (`degradation`: sketch, lowres, colourise or
jpeg; config.json's `i2i_degradation`) takes T(x) as its condition instead, the whole image noised
as its target and all ones as its mask: the same UNet translates a sketch, a small, grey or JPEG
copy into an image (Palette's colourisation and restoration tasks).

It is trained with `DDPMScheduler` epsilon-prediction, the loss taken over the hole only, and
completes an image with `DDIMScheduler` (deterministic, eta 0, a configurable number of steps),
putting the known pixels back after every step.

Encoder for unlearning = `conv_in`, the down blocks and the mid block; the compared embedding
= every skip tensor the up path reads plus the mid block's output. The time embedding feeds both
halves: it is shared, frozen, and trained by no encoder-only method. The up blocks and
`conv_out` are the decoder. A checkpoint is a diffusers `UNet2DModel` folder (config.json +
diffusion_pytorch_model.safetensors); our config.json also names the family and the noise
schedule.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file
from torch import nn

from ..data.degradations import DEFAULTS as DEGRADATIONS
from ..data.degradations import DIFFERENTIABLE, canonical, check_degradation, degrade
from ..errors import UserError
from .base import Draw, I2IModel, load_checked

WEIGHTS = "diffusion_pytorch_model.safetensors"
SCHEDULE_KEYS = ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type",
                 "clip_sample")
DEFAULT_SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "beta_start": 0.0001,
                    "beta_end": 0.02, "prediction_type": "epsilon", "clip_sample": True}
# Timesteps (as fractions of the schedule) at which the membership attack measures the denoising loss.
MEMBERSHIP_TIMESTEPS = (0.05, 0.1, 0.2, 0.3, 0.5)


class DiffusionModel(I2IModel):
    """A conditional DDPM that fills holes, as in Palette."""

    family = "diffusion"
    default_mask = "hybrid"
    sampler_steps = "DDIM steps"
    default_steps = 50
    # aimed per image, its denoising loss at one random timestep (spanning orders of magnitude from step to
    # step) broke retain completions and did not delete (docs/deletion.md, H6): the unseen level it is
    calibrated_deletion = False
    #: which embedding maps the forget term moves: "deep" (the mid block's resolution) or "all"
    forget_scope = "deep"
    degradations = tuple(DEGRADATIONS)

    def __init__(self, unet: UNet2DModel, schedule: dict | None = None, source: str = "this model",
                 degradation: str | None = None):
        super().__init__()
        self.unet = unet
        self.schedule = {**DEFAULT_SCHEDULE, **(schedule or {})}
        self._check_layout(source)
        if degradation is not None:
            check_degradation(degradation, self.image_size, self.channels)
            degradation = canonical(degradation)  # its parameter written out: the default may change, the model not
            # With pure noise as its target (Noisy Label) such a model sees the image only through T(x).
            self.pixel_gradients = degradation.partition(":")[0] in DIFFERENTIABLE
        self.degradation = degradation
        self.scheduler = DDPMScheduler(**self.schedule)
        self.register_buffer("alphas_cumprod", self.scheduler.alphas_cumprod.clone().float(), persistent=False)

    # -- construction and checkpoints -------------------------------------------------------
    @classmethod
    def from_config(cls, image_size: int = 32, channels: int = 1, block_out_channels=(16, 32, 64),
                    layers_per_block: int = 1, attention_levels=(False, False, True), attention_head_dim: int = 16,
                    norm_num_groups: int = 8, mask_channel: bool = True, degradation: str | None = None,
                    **schedule) -> "DiffusionModel":
        """A freshly initialised conditional UNet; `degradation` makes it translate T(x) rather than fill
        holes; `schedule` overrides DDPM settings (e.g. beta_schedule)."""
        unknown = set(schedule) - set(SCHEDULE_KEYS)
        if unknown:
            raise UserError(f"unknown diffusion setting(s) {', '.join(sorted(unknown))}; the family takes "
                            "block_out_channels, layers_per_block, attention_levels, attention_head_dim, "
                            f"norm_num_groups, mask_channel, degradation and {', '.join(SCHEDULE_KEYS)}")
        levels = len(block_out_channels)
        if len(attention_levels) != levels:
            raise UserError("attention_levels needs one true/false per entry of block_out_channels")
        if image_size % 2 ** (levels - 1):
            raise UserError(f"image size {image_size} cannot be halved {levels - 1} times; use a multiple of "
                            f"{2 ** (levels - 1)}")
        if any(width % norm_num_groups for width in block_out_channels):
            raise UserError(f"every entry of block_out_channels must be a multiple of norm_num_groups "
                            f"({norm_num_groups})")
        down = tuple("AttnDownBlock2D" if attend else "DownBlock2D" for attend in attention_levels)
        up = tuple("AttnUpBlock2D" if attend else "UpBlock2D" for attend in reversed(attention_levels))
        unet = UNet2DModel(sample_size=image_size, in_channels=2 * channels + int(mask_channel),
                           out_channels=channels, block_out_channels=tuple(block_out_channels),
                           layers_per_block=layers_per_block, down_block_types=down, up_block_types=up,
                           attention_head_dim=attention_head_dim, norm_num_groups=norm_num_groups)
        return cls(unet, schedule, degradation=degradation)

    @classmethod
    def tiny_settings(cls) -> dict:
        return {"block_out_channels": (8, 16), "attention_levels": (False, True), "attention_head_dim": 8,
                "norm_num_groups": 4, "num_train_timesteps": 100}

    def _check_layout(self, source: str) -> None:
        config = self.unet.config
        if config.in_channels not in (2 * config.out_channels, 2 * config.out_channels + 1):
            raise UserError(f"{source} is a UNet with in_channels={config.in_channels} and out_channels="
                            f"{config.out_channels}: not a conditional inpainting UNet; it needs in_channels = "
                            "2 x out_channels (noisy target + condition), plus 1 for the mask")
        if config.out_channels not in (1, 3):
            raise UserError(f"{source} outputs {config.out_channels} channels; this family takes 1 or 3")
        size = config.sample_size
        if not isinstance(size, int) and not (isinstance(size, (list, tuple)) and len(set(size)) == 1):
            raise UserError(f"{source} has sample_size {size}; this family takes square images")
        skip_blocks = [type(b).__name__ for b in [*self.unet.down_blocks, *self.unet.up_blocks]
                       if hasattr(b, "skip_conv")]
        if skip_blocks or config.class_embed_type is not None or config.time_embedding_type != "positional":
            raise UserError(f"{source} uses {', '.join(skip_blocks) or 'class or Fourier time embeddings'}; "
                            "this family takes UNet2DModel folders with plain (Attn)Down/UpBlock2D blocks "
                            "and positional time embeddings")
        if self.schedule.get("prediction_type") != "epsilon":
            raise UserError(f"{source} predicts {self.schedule.get('prediction_type')!r}; this family trains and "
                            "samples epsilon-prediction models")

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "DiffusionModel":
        """Load a diffusers `UNet2DModel` folder (ours, or any of the matching layout), in float32."""
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        schedule = config.pop("i2i_schedule", None)
        degradation = config.pop("i2i_degradation", None)
        if schedule is None:  # a diffusers pipeline keeps its scheduler beside the unet folder
            for candidate in (folder / "scheduler_config.json", folder.parent / "scheduler" / "scheduler_config.json"):
                if candidate.is_file():
                    stored = json.loads(candidate.read_text())
                    schedule = {key: stored[key] for key in SCHEDULE_KEYS if key in stored}
                    break
        config = {key: value for key, value in config.items() if not key.startswith("i2i_")}
        weights = folder / WEIGHTS
        if not weights.is_file():
            raise UserError(f"{folder} has no {WEIGHTS}; a diffusion checkpoint is a UNet2DModel save_pretrained "
                            "folder (config.json + diffusion_pytorch_model.safetensors)")
        try:
            unet = UNet2DModel.from_config(config)
        except Exception as exc:  # diffusers raises several types for a config it cannot build
            raise UserError(f"cannot build the UNet of {folder}/config.json ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); restore the checkpoint") from None
        model = cls(unet, schedule, source=str(folder), degradation=degradation)
        state = load_checked(weights, unet.state_dict())
        unet.load_state_dict(state)  # load_checked returns float32
        return model

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
        self.check_finite()
        folder = Path(folder)
        self.unet.save_config(str(folder))  # config.json, as diffusers' save_pretrained writes it
        state = {name: tensor.detach().to(dtype).contiguous() for name, tensor in self.unet.state_dict().items()}
        save_file(state, folder / WEIGHTS, metadata={"format": "pt"})
        config_file = folder / "config.json"
        config = json.loads(config_file.read_text())
        config.update({"i2i_family": self.family,
                       "i2i_schedule": {key: self.schedule[key] for key in SCHEDULE_KEYS}})
        if self.degradation is not None:
            config["i2i_degradation"] = self.degradation
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- the family interface -----------------------------------------------------------------
    @property
    def encoder(self) -> nn.Module:
        return nn.ModuleDict({"conv_in": self.unet.conv_in, "down_blocks": self.unet.down_blocks,
                              "mid_block": self.unet.mid_block or nn.Identity()})

    def generator_parameters(self) -> list[nn.Parameter]:
        """The whole UNet, time embedding included (whole-model baselines may change it)."""
        return list(self.unet.parameters())

    @property
    def decoder(self) -> nn.Module:
        parts = {"up_blocks": self.unet.up_blocks, "conv_out": self.unet.conv_out}
        if self.unet.conv_norm_out is not None:
            parts["conv_norm_out"] = self.unet.conv_norm_out
        return nn.ModuleDict(parts)

    @property
    def image_size(self) -> int:
        size = self.unet.config.sample_size
        return int(size if isinstance(size, int) else size[0])

    @property
    def channels(self) -> int:
        return int(self.unet.config.out_channels)

    @property
    def mask_cell(self) -> int:
        # Random masks in blocks of an eighth of the side: never isolated pixels.
        return max(1, self.image_size // 8)

    def check_steps(self, steps: int | None) -> None:
        if steps is None:
            return
        limit = self.schedule["num_train_timesteps"]
        if not 1 <= steps <= limit:
            raise UserError(f"--sampling-steps {steps} is out of range; this model's scheduler has {limit} "
                            f"timesteps, so give 1 to {limit} (default {self.default_steps})")

    def draw(self, images, mask=None, generator=None) -> Draw:
        """The hole, a timestep per image, the diffusion noise and the condition's hole noise."""
        draw = super().draw(images, mask, generator)
        shape, device = images.shape, images.device
        draw.values = {
            "timesteps": torch.randint(0, self.schedule["num_train_timesteps"], (shape[0],),
                                       generator=generator).to(device),
            "noise": torch.randn(shape, generator=generator).to(device),
            "condition_noise": torch.randn(shape, generator=generator).to(device)}
        return draw

    def _inputs(self, images: torch.Tensor, draw: Draw, pure_noise: bool = False) -> torch.Tensor:
        """The UNet input (noisy target, condition, mask); with `pure_noise` the hole holds the noise alone."""
        self.check_images(images)
        clean = images * 2 - 1
        hole = draw.hole.to(clean.dtype)
        noise, timesteps = draw.values["noise"], draw.values["timesteps"]
        if pure_noise:
            noisy = noise
        else:
            scale = self.alphas_cumprod[timesteps].view(-1, 1, 1, 1)
            noisy = scale.sqrt() * clean + (1 - scale).sqrt() * noise
        noisy = hole * noisy + (1 - hole) * clean
        condition = self._condition(images, hole, draw.values["condition_noise"])
        parts = [noisy, condition] + ([hole] if self.unet.config.in_channels % 2 else [])
        return torch.cat(parts, dim=1)

    def _condition(self, images: torch.Tensor, hole: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The condition channels in [-1, 1]: T(images) for a degradation, else the known pixels with
        `noise` in the hole."""
        if self.degradation is not None:
            return degrade(self.degradation, images) * 2 - 1
        return (1 - hole) * (images * 2 - 1) + hole * noise

    def _time_embedding(self, timesteps: torch.Tensor) -> torch.Tensor:
        projected = self.unet.time_proj(timesteps).to(next(self.unet.parameters()).dtype)
        return self.unet.time_embedding(projected)

    def _encode(self, inputs: torch.Tensor, timesteps: torch.Tensor, encoder: nn.Module | None = None):
        """Run the encoder half: (skip tensors, mid output, time embedding)."""
        parts = encoder if encoder is not None else self.encoder
        embedding = self._time_embedding(timesteps)
        sample = parts["conv_in"](inputs)
        skips = [sample]
        for block in parts["down_blocks"]:
            sample, residuals = block(hidden_states=sample, temb=embedding)
            skips.extend(residuals)
        if self.unet.mid_block is not None:
            sample = parts["mid_block"](sample, embedding)
        return skips, sample, embedding

    def _decode(self, skips: list[torch.Tensor], sample: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Run the decoder half (up blocks, output convolution): the predicted noise."""
        skips = list(skips)
        for block in self.unet.up_blocks:
            count = len(block.resnets)
            residuals, skips = tuple(skips[-count:]), skips[:-count]
            sample = block(sample, residuals, embedding)
        if self.unet.conv_norm_out is not None:
            sample = self.unet.conv_act(self.unet.conv_norm_out(sample))
        return self.unet.conv_out(sample)

    def _embed(self, images, draw, encoder, pure_noise: bool = False) -> list[torch.Tensor]:
        skips, middle, _ = self._encode(self._inputs(images, draw, pure_noise), draw.values["timesteps"], encoder)
        return [*skips, middle]

    def embed(self, images, draw, encoder=None):
        return self._embed(images, draw, encoder)

    def forget_embedding(self, embedding):
        """The maps at the mid block's resolution (the last down level's and the mid block's), or all
        of them with `forget_scope = "all"` (the official code). The shallow maps (conv_in and the first
        levels) are local filters that cannot tell one class from another: pulling them towards noise
        changes every image alike (docs/results.md, "Why the diffusion model did not forget")."""
        if self.forget_scope == "all":
            return embedding
        deepest = embedding[-1].shape[-2:]
        return [tensor for tensor in embedding if tensor.shape[-2:] == deepest]

    def embed_noise(self, images, draw, noise="normal", encoder=None, region: str = "image"):
        """The forget target's embedding under the same draw (timestep, diffusion noise, hole).

        "image" (the default): the input built from a noise image of the kind `noise` in place of
        each image, known pixels included: the paper's E0(T(n)) (Eq. 10). "hole": the official
        Palette code's target, pure noise in the hole of the noisy target and the image's own known
        pixels kept. The "hole" target keeps the context that tells the classes apart and, at high
        noise, equals the student's input almost exactly, so it asks for nearly no change where a
        sampler decides what to draw (docs/results.md, "Why the diffusion model did not forget")."""
        if region == "hole":
            return self._embed(images, draw, encoder, pure_noise=True)
        if region != "image":
            raise UserError(f"unknown forget target region {region!r}; choose 'image' or 'hole'")
        return super().embed_noise(images, draw, noise, encoder)

    def _denoise(self, inputs: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self._decode(*self._encode(inputs, timesteps))

    def predict(self, images, draw):
        return self._denoise(self._inputs(images, draw), draw.values["timesteps"])

    def task_target(self, images, draw):
        return draw.values["noise"]

    def prediction_loss(self, prediction, target, draw, reduction="mean"):
        """Mean squared error of the predicted noise over the hole's pixels."""
        hole = draw.hole.to(prediction.dtype)
        per_image = (((prediction - target) ** 2) * hole).flatten(1).sum(1)
        per_image = per_image / (hole.flatten(1).sum(1) * prediction.shape[1]).clamp(min=1)
        return per_image.mean() if reduction == "mean" else per_image

    def noise_task_loss(self, images, draw, noise="normal"):
        """Noisy Label for diffusion: the input holds pure noise in the hole, the target is that noise."""
        prediction = self._denoise(self._inputs(images, draw, pure_noise=True), draw.values["timesteps"])
        return self.prediction_loss(prediction, draw.values["noise"], draw)

    @torch.no_grad()
    def complete(self, images, hole, generator=None, steps=None):
        """DDIM sampling (eta 0) from pure noise in the hole; known pixels are put back after every step."""
        self.check_steps(steps)
        steps = self.default_steps if steps is None else steps
        self.check_images(images)
        device = images.device
        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(steps, device=device)
        clean = images * 2 - 1
        mask = hole.to(clean.dtype)
        condition = self._condition(images, mask, torch.randn(images.shape, generator=generator).to(device))
        sample = mask * torch.randn(images.shape, generator=generator).to(device) + (1 - mask) * clean
        extra = [mask] if self.unet.config.in_channels % 2 else []
        for timestep in scheduler.timesteps:
            inputs = torch.cat([sample, condition, *extra], dim=1)
            predicted = self._denoise(inputs, timestep.expand(images.shape[0]))
            sample = scheduler.step(predicted, timestep, sample).prev_sample
            sample = mask * sample + (1 - mask) * clean
        return torch.where(hole, ((sample + 1) / 2).clamp(0, 1), images)

    @torch.no_grad()
    def membership_scores(self, images, hole, generator=None, steps=None):
        """Minus the denoising loss over the hole, averaged over fixed timesteps with seeded noise
        (the loss attack of the diffusion membership-inference literature)."""
        limit = self.schedule["num_train_timesteps"]
        total = torch.zeros(images.shape[0], device=images.device)
        for fraction in MEMBERSHIP_TIMESTEPS:
            timesteps = torch.full((images.shape[0],), int(fraction * (limit - 1)), device=images.device)
            draw = Draw(hole, {"timesteps": timesteps,
                               "noise": torch.randn(images.shape, generator=generator).to(images.device),
                               "condition_noise": torch.randn(images.shape, generator=generator).to(images.device)})
            total += self.task_loss(images, draw, reduction="none")
        return -total / len(MEMBERSHIP_TIMESTEPS)
