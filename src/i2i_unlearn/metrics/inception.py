"""The FID Inception-v3 network (TensorFlow graph of 2015-12-05), in plain torch, from local weights.

This is the network behind the standard FID: the TF graph ported to PyTorch by pytorch-fid and
torch-fidelity, with torchvision's `Inception3` parameter names, so their weights files
(`pt_inception-2015-12-05-6726825d.pth`, `weights-inception-2015-12-05-6726825d.pth`) load as-is.
It differs from torchvision's ImageNet Inception-v3 in its pooling: the average pools ignore padding,
and the last block max-pools; the classifier has 1008 outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .features import FeatureExtractor

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
WEIGHTS_ENV = "I2I_UNLEARN_INCEPTION_WEIGHTS"


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _chain(x: torch.Tensor, *layers: nn.Module) -> torch.Tensor:
    for layer in layers:
        x = layer(x)
    return x


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that, like TensorFlow's, averages only over the unpadded pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled branches (64 + 64 + 96 + pool_features channels)."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch5x5_1, self.branch5x5_2),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            self.branch_pool(_avg_pool_same(x)),
        ], dim=1)


class InceptionB(nn.Module):
    """Reduction 35x35 -> 17x17: strided 3x3, strided double 3x3 and max-pool branches."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch3x3(x),
            _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (4 x 192 channels out)."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c, 1)
        self.branch7x7_2 = BasicConv2d(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c, 1)
        self.branch7x7dbl_2 = BasicConv2d(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            self.branch1x1(x),
            _chain(x, self.branch7x7_1, self.branch7x7_2, self.branch7x7_3),
            _chain(x, self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                   self.branch7x7dbl_5),
            self.branch_pool(_avg_pool_same(x)),
        ], dim=1)


class InceptionD(nn.Module):
    """Reduction 17x17 -> 8x8: 1x1 then strided 3x3, 1x1-1x7-7x1 then strided 3x3, and max-pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([
            _chain(x, self.branch3x3_1, self.branch3x3_2),
            _chain(x, self.branch7x7x3_1, self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], dim=1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (2048 channels out); `max_pool` selects the pool branch:
    the FID graph average-pools (padding excluded) in Mixed_7b but max-pools in Mixed_7c."""

    def __init__(self, in_channels: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_1(x)
        b = _chain(x, self.branch3x3dbl_1, self.branch3x3dbl_2)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg_pool_same(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(a), self.branch3x3_2b(a),
            self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b),
            self.branch_pool(pooled),
        ], dim=1)


class FIDInceptionNetwork(nn.Module):
    """The FID Inception-v3 trunk and 1008-way classifier; `forward` maps a (N, 3, 299, 299) input in
    the network's range [-1, 1) to the 2048-d pool3 features."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _chain(x, self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = _chain(x, self.Conv2d_3b_1x1, self.Conv2d_4a_3x3)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = _chain(x, self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                   self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _load_weights(network: nn.Module, path: str) -> None:
    """Load a FID Inception state dict into `network`, or raise a one-line UserError."""
    not_fid = f"{path} is not the FID Inception weights ({WEIGHTS_FILE} from {WEIGHTS_URL})"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's own message suggests weights_only=False, which we never do
        raise UserError(f"{not_fid}: torch cannot read it as a weights file ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise UserError(f"{not_fid}: it holds a {type(state).__name__}, not a state dict")
    expected = network.state_dict()
    # Older files may lack BatchNorm's num_batches_tracked counters; they are unused in eval mode.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in state if k in expected and getattr(state[k], "shape", None) != expected[k].shape]
    problems = [f"{label} {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''} ({len(keys)} in all)"
                for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", reshaped))
                if keys]
    if problems:
        raise UserError(f"{not_fid}: keys " + "; ".join(problems))
    network.load_state_dict(state, strict=False)


def resize_like_tensorflow1(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1's resize_bilinear (align_corners=False, no half-pixel centres),
    the resize of the original FID code: output pixel i samples input position i * in / out."""
    def along(x: torch.Tensor, dim: int) -> torch.Tensor:
        length = x.shape[dim]
        position = torch.arange(size, dtype=torch.float64, device=x.device) * (length / size)
        low = position.floor().long()
        high = (low + 1).clamp(max=length - 1)
        shape = [1] * x.dim()
        shape[dim] = size
        weight = (position - low).to(x.dtype).view(shape)
        return x.index_select(dim, low) * (1 - weight) + x.index_select(dim, high) * weight

    return along(along(images, 2), 3)


class InceptionV3FID(FeatureExtractor):
    """The standard FID Inception-v3: 2048-d pool3 features of the image resized to 299x299 like
    TensorFlow 1 did and scaled like the TF graph, (255 x - 128) / 128; weights from a local file."""

    name = "inception-v3"
    dim = 2048
    input_size = 299

    def __init__(self, weights_path: str | None = None):
        super().__init__()
        path = weights_path if weights_path is not None else os.environ.get(WEIGHTS_ENV)
        if path is None or not Path(path).is_file():
            where = f"{path} not found" if path is not None else "no weights file given"
            raise UserError(f"FID Inception weights needed ({where}): download {WEIGHTS_FILE} from {WEIGHTS_URL} "
                            f"and pass it as --features inception-v3:PATH or set {WEIGHTS_ENV}=PATH")
        self.weights = Path(path)
        self.network = FIDInceptionNetwork()
        _load_weights(self.network, str(path))
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionV3FID:
        """The network always stays in eval mode (fixed BatchNorm statistics)."""
        super().train(mode)
        self.network.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] not in (1, 3):
            raise UserError(f"inception-v3 takes grey or RGB images, got {images.shape[1]} channels")
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        images = resize_like_tensorflow1(images, self.input_size)
        return self.network((images * 255 - 128) / 128)

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        """The 1008 class logits for the Inception Score."""
        # Like torch-fidelity's IS input "logits_unbiased": fc weight without the bias, all 1008 classes kept.
        return features @ self.network.fc.weight.T
