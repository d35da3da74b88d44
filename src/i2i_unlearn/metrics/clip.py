"""CLIP image embeddings from a local Hugging Face folder (the paper's "CLIP" metric uses
open_clip ViT-H-14; its Hub repo laion/CLIP-ViT-H-14-laion2B-s32B-b79K also carries the
Hugging Face files this loads). Features are the projected image embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError
from .features import FeatureExtractor

# OpenAI CLIP's normalisation; a folder's preprocessor_config.json overrides it.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HOW_TO_GET = ("download a CLIP model in Hugging Face format (config.json + model.safetensors), e.g. "
              "'hf download laion/CLIP-ViT-H-14-laion2B-s32B-b79K --local-dir DIR', and pass --features clip:DIR")


class CLIPImage(FeatureExtractor):
    """`CLIPVisionModelWithProjection` loaded from a folder (a full CLIPModel folder works too)."""

    name = "clip"

    def __init__(self, folder: str | Path | None = None):
        super().__init__()
        if folder is None:
            raise UserError(f"the clip extractor needs a local model folder: {HOW_TO_GET}")
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            if any(folder.glob("open_clip_*")):
                raise UserError(f"{folder} holds open_clip weights, which need torchvision; {HOW_TO_GET}")
            raise UserError(f"no CLIP model at {folder} (config.json missing): {HOW_TO_GET}")
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        try:
            config = CLIPVisionConfig.from_pretrained(str(folder), local_files_only=True)
            top = json.loads((folder / "config.json").read_text())
            if "projection_dim" in top:  # a full CLIPModel folder keeps it outside the vision config
                config.projection_dim = top["projection_dim"]
            self.network, info = CLIPVisionModelWithProjection.from_pretrained(
                str(folder), config=config, local_files_only=True, output_loading_info=True)
        except (OSError, ValueError, KeyError) as exc:
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise UserError(f"cannot load a CLIP vision model from {folder} ({reason}); {HOW_TO_GET}") from None
        missing = list(info.get("missing_keys", [])) + [m[0] if isinstance(m, tuple) else m
                                                        for m in info.get("mismatched_keys", [])]
        if missing:
            raise UserError(f"{folder} lacks CLIP image weights ({', '.join(map(str, missing[:2]))}, ...); "
                            f"{HOW_TO_GET}")
        self.network.eval().requires_grad_(False)
        self.folder = folder
        self.dim = self.network.config.projection_dim
        self.input_size = self.network.config.image_size
        mean, std = CLIP_MEAN, CLIP_STD
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            settings = json.loads(preprocessor.read_text())
            mean, std = settings.get("image_mean", mean), settings.get("image_std", std)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @property
    def cache_id(self) -> str:
        return f"{self.name}:{self.folder.resolve()}:{self.network.config.hidden_size}:{self.dim}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bicubic",
                               align_corners=False, antialias=True).clamp(0, 1)
        return self.network(pixel_values=(images - self.mean) / self.std).image_embeds
