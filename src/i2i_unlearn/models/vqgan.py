"""VQ-GAN family: a MAGE-style masked-token transformer over the token grid of a VQ tokenizer.

- Tokenizer: a diffusers `VQModel` (trained as a VQ-GAN by `i2i_unlearn.tokenizer`), frozen
  here: no method trains it, and it is not among the generator parameters.
- Encoder (what unlearning fine-tunes): token embedding, a class token, learned position
  embeddings, transformer blocks over the kept tokens (masked tokens are left out of attention
  as keys), final norm. The compared embedding is the encoder output at the class token and
  the kept tokens.
- Decoder: a projection, a learned mask embedding put at every masked position, its own
  position embeddings, blocks, norm and a head that predicts the codebook index of every
  token. Its output table is its own (MAGE ties it to the encoder's token embedding, and the
  official unlearning code then trains that shared table by mistake; ours shares nothing).

Training masks follow MAGE (`mage`: a rate per batch from a truncated normal, mean 0.55,
sd 0.25, range [0.5, 1]); the loss is the cross-entropy over the masked tokens. Completion is
MaskGIT-style iterative decoding (seeded): each iteration samples every unknown token, keeps
the most confident ones and masks the rest again on a cosine schedule; known tokens are never
changed, and the decoded image is composited so that the known pixels stay.

A checkpoint is a folder: config.json (the transformer's settings, `i2i_family: vqgan`),
transformer.safetensors, and tokenizer/ (a `VQModel.save_pretrained` folder).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import VQModel
from safetensors.torch import save_file
from torch import nn

from ..errors import UserError
from .base import Draw, I2IModel, load_checked

WEIGHTS = "transformer.safetensors"
TOKENIZER = "tokenizer"
TOKENIZER_WEIGHTS = "diffusion_pytorch_model.safetensors"
SETTINGS = ("image_size", "channels", "codebook_size", "grid", "hidden_size", "depth", "heads",
            "decoder_hidden_size", "decoder_depth", "decoder_heads", "mlp_ratio", "choice_temperature")


class Block(nn.Module):
    """A pre-norm transformer block (self-attention, then an MLP), written out so that training
    and inference run the same arithmetic (torch's own layers switch to a fused kernel in eval
    mode, which would make a frozen teacher differ from its identical student)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width))

    def forward(self, hidden: torch.Tensor, visible: torch.Tensor | None = None) -> torch.Tensor:
        """`visible` (B, N) bool: the positions other positions may attend to (None: all)."""
        batch, length, width = hidden.shape
        q, k, v = self.qkv(self.norm1(hidden)).view(batch, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = None if visible is None else visible[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        hidden = hidden + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return hidden + self.mlp(self.norm2(hidden))


def _blocks(width: int, depth: int, heads: int, mlp_ratio: int) -> nn.ModuleList:
    return nn.ModuleList(Block(width, heads, mlp_ratio) for _ in range(depth))


class TokenEncoder(nn.Module):
    """Token embedding + class token + positions + blocks over the kept tokens + norm."""

    def __init__(self, codebook_size: int, tokens: int, width: int, depth: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.token_embedding = nn.Embedding(codebook_size, width)
        self.class_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.zeros(1, tokens + 1, width))
        self.blocks = _blocks(width, depth, heads, mlp_ratio)
        self.norm = nn.LayerNorm(width)
        for parameter in (self.class_token, self.position, self.token_embedding.weight):
            nn.init.trunc_normal_(parameter, std=0.02)

    def forward(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, 1 + L, width), zero at the masked tokens' rows.

        When every image keeps the same number of tokens (always under the `mage` training
        mask), the blocks run on the kept tokens alone, as MAE and MAGE do; otherwise on the
        whole grid with the masked tokens hidden from attention. Both compute the same function.
        """
        hidden = self.token_embedding(tokens)
        hidden = torch.cat([self.class_token.expand(tokens.shape[0], -1, -1), hidden], dim=1) + self.position
        visible = torch.cat([torch.ones_like(keep[:, :1]), keep], dim=1)
        counts = visible.sum(1)
        if bool((counts == counts[0]).all()):
            rows = visible.float().argsort(dim=1, descending=True, stable=True)[:, :int(counts[0])]
            index = rows.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            kept = hidden.gather(1, index)
            for block in self.blocks:
                kept = block(kept)
            return torch.zeros_like(hidden).scatter(1, index, self.norm(kept))
        for block in self.blocks:
            hidden = block(hidden, visible)
        return self.norm(hidden) * visible.unsqueeze(-1)


class TokenDecoder(nn.Module):
    """Projection + mask embedding at masked positions + positions + blocks + norm + index head."""

    def __init__(self, codebook_size: int, tokens: int, encoder_width: int, width: int, depth: int, heads: int,
                 mlp_ratio: int):
        super().__init__()
        self.project = nn.Linear(encoder_width, width)
        self.mask_embedding = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.zeros(1, tokens + 1, width))
        self.blocks = _blocks(width, depth, heads, mlp_ratio)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, codebook_size)
        for parameter in (self.mask_embedding, self.position):
            nn.init.trunc_normal_(parameter, std=0.02)

    def forward(self, hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Logits over the codebook for every token (B, L, codebook)."""
        hidden = self.project(hidden)
        known = torch.cat([torch.ones_like(keep[:, :1]), keep], dim=1).unsqueeze(-1)
        hidden = torch.where(known, hidden, self.mask_embedding.to(hidden.dtype)) + self.position
        for block in self.blocks:
            hidden = block(hidden)
        return self.head(self.norm(hidden[:, 1:]))


class VQGANModel(I2IModel):
    """Masked-token inpainting on a frozen VQ tokenizer, as MAGE does."""

    family = "vqgan"
    default_mask = "mage"
    sampler_steps = "decoding iterations"
    default_steps = 12
    pixel_gradients = False

    def __init__(self, tokenizer: VQModel, settings: dict):
        super().__init__()
        self.settings = dict(settings)
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        s = self.settings
        tokens = s["grid"] ** 2
        self.transformer = nn.ModuleDict({
            "encoder": TokenEncoder(s["codebook_size"], tokens, s["hidden_size"], s["depth"], s["heads"],
                                    s["mlp_ratio"]),
            "decoder": TokenDecoder(s["codebook_size"], tokens, s["hidden_size"], s["decoder_hidden_size"],
                                    s["decoder_depth"], s["decoder_heads"], s["mlp_ratio"])})

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen, always in inference mode
        return self

    # -- construction and checkpoints -------------------------------------------------------
    @classmethod
    def from_config(cls, image_size: int = 32, channels: int = 1, tokenizer: str | VQModel | None = None,
                    codebook_size: int = 256, tokenizer_channels=(16, 32, 64), latent_channels: int = 16,
                    hidden_size: int = 128, depth: int = 4, heads: int = 4, decoder_hidden_size: int = 96,
                    decoder_depth: int = 2, decoder_heads: int = 4, mlp_ratio: int = 4,
                    choice_temperature: float = 4.5) -> "VQGANModel":
        """A fresh transformer on `tokenizer` (a folder: a VQ-GAN checkpoint or a VQModel), or on a
        fresh, untrained tokenizer (which `train` then trains first)."""
        from ..tokenizer import make_tokenizer

        if isinstance(tokenizer, (str, Path)):
            tokenizer = load_tokenizer(tokenizer)
        elif tokenizer is None:
            tokenizer = make_tokenizer(image_size, channels, codebook_size, latent_channels, tuple(tokenizer_channels))
        for name, value in (("hidden_size", hidden_size), ("decoder_hidden_size", decoder_hidden_size)):
            if value % (heads if name == "hidden_size" else decoder_heads):
                raise UserError(f"{name} {value} must be a multiple of its number of heads")
        settings = {"image_size": image_size, "channels": channels,
                    "codebook_size": int(tokenizer.config.num_vq_embeddings),
                    "grid": image_size // _downsampling(tokenizer), "hidden_size": hidden_size, "depth": depth,
                    "heads": heads, "decoder_hidden_size": decoder_hidden_size, "decoder_depth": decoder_depth,
                    "decoder_heads": decoder_heads, "mlp_ratio": mlp_ratio, "choice_temperature": choice_temperature}
        _check_pair(tokenizer, settings, "the tokenizer")
        return cls(tokenizer, settings)

    @classmethod
    def tiny_settings(cls) -> dict:
        return {"codebook_size": 32, "tokenizer_channels": (8, 8, 8), "latent_channels": 8, "hidden_size": 32,
                "depth": 2, "heads": 2, "decoder_hidden_size": 32, "decoder_depth": 1, "decoder_heads": 2}

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "VQGANModel":
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        missing = [key for key in SETTINGS if key not in config]
        if missing:
            raise UserError(f"{folder}/config.json lacks {', '.join(missing)}; it is not a complete VQ-GAN "
                            "checkpoint, restore it")
        if not (folder / TOKENIZER).is_dir():
            raise UserError(f"{folder} has no {TOKENIZER}/ folder; a VQ-GAN checkpoint needs the VQ tokenizer its "
                            "transformer was trained on; copy it from the checkpoint you trained with")
        weights = folder / WEIGHTS
        if not weights.is_file():
            raise UserError(f"{folder} has no {WEIGHTS}; restore the checkpoint")
        tokenizer = load_tokenizer(folder / TOKENIZER)
        settings = {key: config[key] for key in SETTINGS}
        _check_pair(tokenizer, settings, f"{folder}/{TOKENIZER}")
        expected = config.get("tokenizer_sha256")
        if expected and tokenizer_digest(tokenizer) != expected:
            raise UserError(f"{folder}/{TOKENIZER} is not the tokenizer this transformer was trained on (its weights "
                            "differ); restore that folder from the original checkpoint")
        model = cls(tokenizer, settings)
        model.transformer.load_state_dict(load_checked(weights, model.transformer.state_dict()))
        return model

    def save_pretrained(self, folder: str | Path, dtype: torch.dtype = torch.float32) -> None:
        self.check_finite()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / TOKENIZER).mkdir(exist_ok=True)
        self.tokenizer.save_config(str(folder / TOKENIZER))
        # The tokenizer always in float32 (rounding its codebook would change the tokens the
        # transformer was trained on); the transformer in `dtype`, cast from a copy.
        save_file(_tokenizer_state(self.tokenizer), folder / TOKENIZER / TOKENIZER_WEIGHTS, metadata={"format": "pt"})
        save_file({name: tensor.detach().to(dtype).contiguous() for name, tensor in self.transformer.state_dict().items()},
                  folder / WEIGHTS, metadata={"format": "pt"})
        config = {"i2i_family": self.family, **self.settings, "tokenizer_sha256": tokenizer_digest(self.tokenizer)}
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- the family interface -----------------------------------------------------------------
    @property
    def encoder(self) -> nn.Module:
        return self.transformer["encoder"]

    @property
    def decoder(self) -> nn.Module:
        return self.transformer["decoder"]

    def generator_parameters(self) -> list[nn.Parameter]:
        """The transformer; never the tokenizer."""
        return list(self.transformer.parameters())

    @property
    def image_size(self) -> int:
        return int(self.settings["image_size"])

    @property
    def channels(self) -> int:
        return int(self.settings["channels"])

    @property
    def mask_cell(self) -> int:
        return self.image_size // self.settings["grid"]  # one token's pixels

    def check_steps(self, steps: int | None) -> None:
        if steps is not None and steps < 1:
            raise UserError(f"--sampling-steps (decoding iterations) must be at least 1, not {steps} "
                            f"(default {self.default_steps})")

    @torch.no_grad()
    def tokenize(self, images: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
        """Codebook indices (B, grid * grid) of images in [0, 1].

        With `hole`, the hole's pixels are replaced by the mean of each image's known pixels
        first: the tokenizer's convolutions reach across token borders, so tokens of the known
        part would otherwise carry what is in the hole. Inputs always go through this; only
        training targets are tokens of the whole image.
        """
        from ..tokenizer import quantize

        self.check_images(images)
        if hole is not None:
            hole = hole.to(images.dtype)
            known = 1 - hole
            mean = (images * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
            images = images * known + mean * hole
        return quantize(self.tokenizer, images)[2]

    def token_mask(self, hole: torch.Tensor) -> torch.Tensor:
        """Which tokens are unknown (B, L): every token touching the hole."""
        return F.max_pool2d(hole.float(), self.mask_cell).flatten(1) > 0

    def draw(self, images, mask=None, generator=None) -> Draw:
        draw = super().draw(images, mask, generator)
        draw.values["token_mask"] = self.token_mask(draw.hole)
        return draw

    def _embed_tokens(self, tokens, draw, encoder=None) -> list[torch.Tensor]:
        encoder = encoder if encoder is not None else self.encoder
        keep = ~draw.values["token_mask"]
        hidden = encoder(tokens, keep)
        rows = torch.cat([torch.ones_like(keep[:, :1]), keep], dim=1)
        return [hidden[rows]]  # the class token and the kept tokens of every image, (count, width)

    def embed(self, images, draw, encoder=None):
        return self._embed_tokens(self.tokenize(images, draw.hole), draw, encoder)

    def _logits(self, tokens: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(tokens, keep), keep)

    def predict(self, images, draw):
        return self._logits(self.tokenize(images, draw.hole), ~draw.values["token_mask"])

    def task_target(self, images, draw):
        return self.tokenize(images)

    def prediction_loss(self, prediction, target, draw, reduction="mean"):
        """Cross-entropy over the masked tokens: with indices as target, or with another model's
        logits as a soft target (Retain Label)."""
        mask = draw.values["token_mask"].to(prediction.dtype)
        logits = prediction.flatten(0, 1)
        if target.is_floating_point():
            per_token = F.cross_entropy(logits, target.flatten(0, 1).softmax(dim=-1), reduction="none")
        else:
            per_token = F.cross_entropy(logits, target.flatten(), reduction="none")
        per_image = (per_token.view(mask.shape) * mask).sum(1) / mask.sum(1).clamp(min=1)
        return per_image.mean() if reduction == "mean" else per_image

    def noise_task_loss(self, images, draw, noise="normal"):
        """Noisy Label: the masked tokens' targets are codebook indices drawn uniformly at random.

        Uniform, not the official Gaussian over index values: codebook indices have no order, so
        a bell curve over their numbers favours arbitrary entries; uniform is the paper's reading.
        """
        target = torch.randint(0, self.settings["codebook_size"], draw.values["token_mask"].shape,
                               device=images.device)
        return self.prediction_loss(self.predict(images, draw), target, draw)

    @torch.no_grad()
    def complete(self, images, hole, generator=None, steps=None):
        """MaskGIT decoding of the hole's tokens, then the decoded image composited: known pixels stay."""
        from ..tokenizer import decode_indices

        decoded = decode_indices(self.tokenizer, self.decode_tokens(images, hole, generator, steps))
        return torch.where(hole, decoded, images)

    @torch.no_grad()
    def decode_tokens(self, images, hole, generator=None, steps=None) -> torch.Tensor:
        """MaskGIT iterative decoding: (B, L) token indices, the known ones unchanged.

        Each of `steps` iterations samples every unknown token from the predicted distribution
        (seeded by `generator`), then masks again the least confident of them (confidence = log
        probability + Gumbel noise scaled by choice_temperature x the share of iterations left),
        keeping a cosine-shrinking number unknown; the last iteration decides them all."""
        self.check_steps(steps)
        iterations = self.default_steps if steps is None else steps
        tokens = self.tokenize(images, hole)
        unknown = self.token_mask(hole)
        total = unknown.sum(1)
        temperature = float(self.settings["choice_temperature"])
        for iteration in range(iterations):
            if not unknown.any():
                break
            probabilities = self._logits(tokens, ~unknown).float().softmax(dim=-1)
            flat = probabilities.flatten(0, 1)
            # drawn on the CPU, where the caller's generator lives (the model may be on a GPU)
            sampled = torch.multinomial(flat.cpu(), 1, generator=generator).view(tokens.shape).to(tokens.device)
            sampled = torch.where(unknown, sampled, tokens)
            ratio = (iteration + 1) / iterations
            # Tokens still unknown after this iteration: a cosine share of the hole, one fewer at least.
            remaining = torch.floor(total * math.cos(math.pi / 2 * ratio)).long()
            remaining = torch.minimum(remaining, (unknown.sum(1) - 1).clamp(min=0))
            chosen = probabilities.gather(-1, sampled.unsqueeze(-1)).squeeze(-1).clamp(min=1e-20).log()
            uniform = torch.rand(tokens.shape, generator=generator).to(tokens.device).clamp(1e-20, 1.0)
            confidence = chosen + temperature * (1 - ratio) * -torch.log(-torch.log(uniform))
            confidence = torch.where(unknown, confidence, torch.full_like(confidence, math.inf))
            rank = confidence.argsort(dim=1).argsort(dim=1)
            tokens, unknown = sampled, rank < remaining.unsqueeze(1)
        return tokens

    @torch.no_grad()
    def membership_scores(self, images, hole, generator=None, steps=None):
        """Minus the cross-entropy of the hole's tokens given the rest (the loss attack)."""
        mask = self.token_mask(hole)
        draw = Draw(hole, {"token_mask": mask})
        return -self.task_loss(images, draw, reduction="none")


def _tokenizer_state(tokenizer: VQModel) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().float().contiguous() for name, tensor in tokenizer.state_dict().items()}


def tokenizer_digest(tokenizer: VQModel) -> str:
    """SHA-256 of a tokenizer's float32 weights (names and values, in name order)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(_tokenizer_state(tokenizer).items()):
        digest.update(name.encode())
        digest.update(tensor.cpu().numpy().tobytes())
    return digest.hexdigest()


def _downsampling(tokenizer: VQModel) -> int:
    return 2 ** (len(tokenizer.config.block_out_channels) - 1)


def _check_pair(tokenizer: VQModel, settings: dict, source: str) -> None:
    """The tokenizer and the transformer must agree on codebook, grid, image size and channels."""
    size, grid = settings["image_size"], settings["grid"]
    if int(tokenizer.config.num_vq_embeddings) != settings["codebook_size"]:
        raise UserError(f"{source} has {tokenizer.config.num_vq_embeddings} codebook entries but the transformer "
                        f"predicts {settings['codebook_size']}; use the tokenizer the transformer was trained on")
    if size % _downsampling(tokenizer) or size // _downsampling(tokenizer) != grid:
        raise UserError(f"{source} makes a {size // _downsampling(tokenizer)}x{size // _downsampling(tokenizer)} "
                        f"token grid from {size}-pixel images but the transformer expects {grid}x{grid}; use the "
                        "tokenizer the transformer was trained on")
    if int(tokenizer.config.in_channels) != settings["channels"]:
        raise UserError(f"{source} takes {tokenizer.config.in_channels}-channel images but the transformer was "
                        f"set up for {settings['channels']}; use the tokenizer the transformer was trained on")


def load_tokenizer(path: str | Path) -> VQModel:
    """A frozen VQModel from a VQModel folder or from a VQ-GAN checkpoint's tokenizer/ folder."""
    from . import checkpoint_folder

    folder = checkpoint_folder(path)
    if (folder / TOKENIZER / "config.json").is_file():
        folder = folder / TOKENIZER
    config_file, weights = folder / "config.json", folder / TOKENIZER_WEIGHTS
    if not config_file.is_file() or not weights.is_file():
        raise UserError(f"no VQ tokenizer at {folder}: expected a diffusers VQModel folder (config.json + "
                        f"{TOKENIZER_WEIGHTS}) or a VQ-GAN checkpoint with a {TOKENIZER}/ folder")
    try:
        config = json.loads(config_file.read_text())
        if config.get("_class_name") != "VQModel":
            raise ValueError(f"a {config.get('_class_name')!r}, not a VQModel")
        tokenizer = VQModel.from_config(config)
    except Exception as exc:  # bad JSON, or a config diffusers cannot build
        raise UserError(f"cannot read the tokenizer at {folder} ({str(exc).splitlines()[0][:160]}); "
                        "restore the checkpoint") from None
    tokenizer.load_state_dict(load_checked(weights, tokenizer.state_dict()))
    return tokenizer.requires_grad_(False).eval()
