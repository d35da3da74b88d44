"""A small image classifier that this project trains per dataset (one is bundled for Fashion-MNIST).

It serves twice: as a feature extractor (its penultimate layer, matched to the data rather
than to ImageNet), and as the judge of forget-class accuracy: how often the completed images of
a forgotten class are still recognised as that class.

A classifier folder holds config.json (image size, channels, class names) and model.safetensors;
`train_classifier` writes one together with a record of its test accuracy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import UserError
from .features import FeatureExtractor

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED = {"fashion-mnist": ASSETS / "classifier-fashion-mnist"}


class SmallCNN(nn.Module):
    """Three conv blocks (width, 2x, 4x channels) with batch norm, global average pool, linear head."""

    def __init__(self, channels: int, classes: int, width: int = 16):
        super().__init__()
        layers, inputs = [], channels
        for outputs in (width, width * 2, width * 4):
            layers += [nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(),
                       nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(),
                       nn.MaxPool2d(2)]
            inputs = outputs
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(inputs, classes)
        self.dim = inputs

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images * 2 - 1).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


class Classifier(FeatureExtractor):
    """A trained SmallCNN behind the extractor interface; inputs are resized to its own size."""

    name = "classifier"

    def __init__(self, folder: str | Path | None = None, dataset: str = "fashion-mnist"):
        super().__init__()
        folder = Path(folder) if folder is not None else BUNDLED.get(dataset)
        if folder is None:
            raise UserError(f"no bundled classifier for {dataset}; train one with 'i2i-unlearn train-classifier "
                            f"--dataset {dataset} --out DIR' and pass --features classifier:DIR")
        config_file, weights = folder / "config.json", folder / "model.safetensors"
        if not config_file.is_file() or not weights.is_file():
            raise UserError(f"no classifier at {folder}: expected config.json and model.safetensors "
                            "(made by 'i2i-unlearn train-classifier')")
        try:
            config = json.loads(config_file.read_text())
            self.image_size, self.channels = int(config["image_size"]), int(config["channels"])
            self.class_names = list(config["class_names"])
            self.network = SmallCNN(self.channels, len(self.class_names), int(config.get("width", 16)))
            self.network.load_state_dict(load_file(weights))
        except Exception as exc:  # unreadable JSON, damaged safetensors, wrong shapes
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            raise UserError(f"classifier at {folder} is corrupt ({reason}); retrain it with "
                            "'i2i-unlearn train-classifier'") from None
        self.weights = weights
        self.dim = self.network.dim
        self.network.eval().requires_grad_(False)

    def _fit(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != self.channels:
            images = images.mean(dim=1, keepdim=True) if self.channels == 1 else images.expand(-1, 3, -1, -1)
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return images

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.features(self._fit(images))

    def class_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.network.head(features)

    def label_map(self, class_names: list[str]) -> torch.Tensor | None:
        """For a data set's labels, the classifier's index of the same class name (-1 where it has none)."""
        known = {name.lower(): index for index, name in enumerate(self.class_names)}
        mapping = torch.tensor([known.get(name.lower(), -1) for name in class_names])
        return mapping if (mapping >= 0).any() else None


@dataclass
class ClassifierConfig:
    dataset: str = "fashion-mnist"
    image_size: int = 32
    channels: int = 1
    width: int = 16
    steps: int = 2000
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    seed: int = 0


class _CrossEntropy(nn.Module):
    uses_labels = True

    def __init__(self, network: SmallCNN, image_size: int):
        super().__init__()
        self.network = network
        self.pad = image_size // 8

    def forward(self, batch):
        images, labels = batch["train"]
        # Light augmentation: random shifts and horizontal flips.
        shifted = F.pad(images, (self.pad,) * 4, mode="replicate")
        dx, dy = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
        images = shifted[:, :, dy:dy + images.shape[2], dx:dx + images.shape[3]]
        if torch.rand(()) < 0.5:
            images = images.flip(-1)
        logits = self.network(images)
        return F.cross_entropy(logits, labels), {"accuracy": (logits.argmax(1) == labels).float().mean()}


@torch.no_grad()
def accuracy(classifier: nn.Module, data, batch_size: int = 500) -> float:
    """Top-1 accuracy of a SmallCNN on an image dataset."""
    classifier.eval()
    correct = total = 0
    for images, labels in torch.utils.data.DataLoader(data, batch_size=batch_size):
        correct += int((classifier(images).argmax(1) == labels).sum())
        total += len(labels)
    return correct / max(total, 1)


def train_classifier(config: ClassifierConfig, out: str | Path, cpu: bool = False) -> dict:
    """Train a SmallCNN on a dataset's training split; save it and its test accuracy to `out`."""
    from .. import engine
    from ..data import load_dataset
    from ..records import RunRecord, atomic_out_dir, check_out_dir

    train_set = load_dataset(config.dataset, "train", config.image_size, config.channels)
    test_set = load_dataset(config.dataset, "test", config.image_size, config.channels)
    folder = check_out_dir(out)  # written in one rename once the classifier is trained
    record = RunRecord("train-classifier", asdict(config))
    torch.manual_seed(config.seed)
    network = SmallCNN(config.channels, len(train_set.class_names), config.width)
    accelerator = engine.make_accelerator(cpu)
    optim = engine.OptimConfig(steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                               betas=(0.9, 0.999), warmup_steps=min(100, config.steps // 10), schedule="cosine")
    history = engine.run(_CrossEntropy(network, config.image_size), list(network.parameters()),
                         {"train": engine.loader(train_set, config.batch_size, config.seed)}, optim, config.seed,
                         accelerator, description="train-classifier")
    network = accelerator.unwrap_model(network).cpu()
    test_accuracy = accuracy(network, test_set)
    payload = record.finish(test_accuracy=test_accuracy, test_images=len(test_set), train_images=len(train_set),
                            final_loss=history[-1]["loss"] if history else None,
                            processes=accelerator.num_processes, history=history)
    if accelerator.is_main_process:  # one writer, however many processes trained
        with atomic_out_dir(folder) as temporary:
            (temporary / "config.json").write_text(json.dumps(
                {"image_size": config.image_size, "channels": config.channels, "width": config.width,
                 "class_names": train_set.class_names, "dataset": config.dataset}, indent=2) + "\n")
            save_file({k: v.contiguous() for k, v in network.state_dict().items()}, temporary / "model.safetensors")
            record.write(temporary / "train_record.json")
    return payload
