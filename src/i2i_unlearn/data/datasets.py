"""Image datasets: built-in Fashion-MNIST and emoji, and any folder of class sub-folders.

Every dataset yields `(image, label)` with `image` a float tensor in [0, 1] of shape
(channels, size, size), and knows its `class_names` and a stable string `ids[i]` per image
(used by file lists for sample-level deletion). A dataset spec is a string:

- ``fashion-mnist`` or ``fashion-mnist:DIR`` (the four idx .gz files)
- ``emoji`` (rendered from the Noto Color Emoji font, classes = Unicode emoji groups)
- ``imagefolder:PATH`` (one sub-folder per class; optional ``train/`` and ``test/`` levels)
"""

from __future__ import annotations

import gzip
import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import UserError

FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FASHION_MNIST_DIRS = ["/usr/share/datasets/fashion-mnist"]
FASHION_MNIST_ENV = "I2I_UNLEARN_FASHION_MNIST"
EMOJI_FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
EMOJI_TEST = "/usr/share/unicode/emoji/emoji-test.txt"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
# Share of images held out as test images when a dataset has no test split of its own.
DEFAULT_TEST_FRACTION = 0.1


def fit_image(image: Image.Image, size: int, channels: int) -> torch.Tensor:
    """Convert a PIL image to a (channels, size, size) float tensor in [0, 1].

    An image that already fits and is at least 3/4 of `size` is padded (no resampling, so
    Fashion-MNIST's 28x28 sits unchanged inside 32x32); any other image is resized so its
    longer side is `size`, keeping the aspect ratio, then padded with black.
    """
    if image.mode.startswith("I") or image.mode == "F":  # 16- or 32-bit grey: scale, do not clip, to 8 bits
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 257.0
        image = Image.fromarray(np.clip(np.round(values), 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    image = image.convert("L" if channels == 1 else "RGB")
    width, height = image.size
    longest = max(width, height)
    if not (size * 3 / 4 <= longest <= size):
        scale = size / longest
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
        image = image.resize((width, height), Image.BICUBIC)
    canvas = Image.new(image.mode, (size, size), 0)
    canvas.paste(image, ((size - width) // 2, (size - height) // 2))
    array = np.asarray(canvas, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0


def _fit_arrays(arrays: np.ndarray, size: int, channels: int) -> torch.Tensor:
    """`fit_image` over a stack of uint8 images, as a (N, channels, size, size) uint8 tensor."""
    height, width = arrays.shape[1:3]
    if arrays.ndim == 3 and size * 3 / 4 <= max(height, width) <= size:
        # Grey images that only need padding: one array operation instead of N PIL calls.
        top, left = (size - height) // 2, (size - width) // 2
        padded = np.zeros((len(arrays), size, size), dtype=np.uint8)
        padded[:, top:top + height, left:left + width] = arrays
        return torch.from_numpy(padded).unsqueeze(1).expand(-1, channels, -1, -1).contiguous()
    if not len(arrays):
        return torch.zeros(0, channels, size, size, dtype=torch.uint8)
    return torch.stack([(fit_image(Image.fromarray(a), size, channels) * 255).round().to(torch.uint8)
                        for a in arrays])


def held_out(image_id: str, fraction: float) -> bool:
    """Whether an image belongs to the held-out test share, decided by a hash of its id.

    Independent of any run seed, so train, unlearn and evaluate always agree on the split.
    """
    digest = hashlib.sha1(image_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


class ImageDataset(Dataset):
    """A labelled image set at one size and channel count.

    Images come either from an in-memory uint8 array (built-in sets) or from files (folders),
    decoded when first asked for.
    """

    def __init__(self, name: str, class_names: list[str], labels: list[int], ids: list[str],
                 image_size: int, channels: int, arrays: np.ndarray | None = None,
                 paths: list[Path] | None = None):
        self.name = name
        self.class_names = list(class_names)
        self.labels = list(labels)
        self.ids = list(ids)
        self.image_size = image_size
        self.channels = channels
        self._paths = paths
        self._cache: torch.Tensor | None = None
        if arrays is not None:
            # Convert once; the built-in sets are small enough to keep in memory as uint8.
            self._cache = _fit_arrays(arrays, image_size, channels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        if self._cache is not None:
            image = self._cache[index].float() / 255.0
        else:
            path = self._paths[index]
            try:
                with Image.open(path) as raw:
                    raw.load()
                    image = fit_image(raw, self.image_size, self.channels)
            except (UnidentifiedImageError, OSError, ValueError) as exc:
                raise UserError(f"cannot decode image {path}: {exc}; remove or replace the file") from None
        return image, self.labels[index]

    def verify(self, indices=None) -> None:
        """Decode every image file once before a long run starts, so that a broken one fails now."""
        if self._paths is None:
            return
        for index in range(len(self)) if indices is None else indices:
            path = self._paths[index]
            try:
                with Image.open(path) as raw:
                    raw.load()
            except Exception as exc:  # Pillow raises many types for a broken file
                raise UserError(f"cannot decode image {path}: {exc}; remove or replace the file") from None

    def class_index(self, name: str) -> int:
        """The label of a class given by name (case-insensitive) or by index."""
        lowered = {c.lower(): i for i, c in enumerate(self.class_names)}
        if name.lower() in lowered:
            return lowered[name.lower()]
        if name.isdigit() and int(name) < len(self.class_names):
            return int(name)
        raise UserError(f"unknown class {name!r} in {self.name}; choose from: "
                        + ", ".join(self.class_names))


def _fashion_mnist_dir(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else [os.environ.get(FASHION_MNIST_ENV), *FASHION_MNIST_DIRS]
    for folder in candidates:
        if folder and (Path(folder) / "train-images-idx3-ubyte.gz").exists():
            return Path(folder)
    where = explicit or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIRS[0]
    raise UserError(f"Fashion-MNIST files not found in {where}: run 'apt-get install dataset-fashion-mnist' "
                    f"or put the four idx .gz files in a folder and set {FASHION_MNIST_ENV}=FOLDER")


def _read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc}; re-download the Fashion-MNIST idx files") from None
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@lru_cache(maxsize=4)
def _fashion_mnist_arrays(folder: Path, split: str):
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return images, labels


def _fashion_mnist(folder: str | None, split: str, image_size: int, channels: int) -> ImageDataset:
    images, labels = _fashion_mnist_arrays(_fashion_mnist_dir(folder), split)
    ids = [f"{split}/{i:05d}" for i in range(len(labels))]
    return ImageDataset("fashion-mnist", FASHION_MNIST_CLASSES, labels.tolist(), ids,
                        image_size, channels, arrays=images)


@lru_cache(maxsize=1)
def _render_emoji() -> tuple[list[str], list[int], list[str], np.ndarray]:
    """Render every fully-qualified emoji without skin tones: (class names, labels, ids, images)."""
    from PIL import ImageDraw, ImageFont

    for required, package in ((EMOJI_FONT, "fonts-noto-color-emoji"), (EMOJI_TEST, "unicode-data")):
        if not Path(required).exists():
            raise UserError(f"{required} not found: run 'apt-get install {package}' to use the emoji dataset")
    font = ImageFont.truetype(EMOJI_FONT, 109)  # the font's only bitmap size
    groups: list[str] = []
    labels, ids, images = [], [], []
    group = None
    for line in Path(EMOJI_TEST).read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
            continue
        if not line or line.startswith("#") or "; fully-qualified" not in line:
            continue
        codepoints = line.split(";")[0].split()
        if any(0x1F3FB <= int(c, 16) <= 0x1F3FF for c in codepoints):
            continue  # skin-tone variants repeat the same picture
        text = "".join(chr(int(c, 16)) for c in codepoints)
        canvas = Image.new("RGBA", (160, 136), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((0, 0), text, font=font, embedded_color=True)
        box = canvas.getbbox()
        if box is None:
            continue
        glyph = canvas.crop(box)
        side = max(glyph.size)
        square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
        square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        if group not in groups:
            groups.append(group)
        labels.append(groups.index(group))
        ids.append("emoji/" + "-".join(codepoints).lower())
        images.append(np.asarray(square.convert("RGB").resize((96, 96), Image.BICUBIC)))
    # Groups with too few pictures to hold any out (Unicode's "Component") are left out.
    counts = np.bincount(labels, minlength=len(groups))
    keep = [g for g in range(len(groups)) if counts[g] >= 20]
    remap = {g: k for k, g in enumerate(keep)}
    rows = [i for i, label in enumerate(labels) if label in remap]
    return ([groups[g] for g in keep], [remap[labels[i]] for i in rows], [ids[i] for i in rows],
            np.stack([images[i] for i in rows]))


def _emoji(split: str, image_size: int, channels: int, test_fraction: float) -> ImageDataset:
    class_names, labels, ids, images = _render_emoji()
    rows = [i for i, image_id in enumerate(ids) if held_out(image_id, test_fraction) == (split == "test")]
    return ImageDataset("emoji", class_names, [labels[i] for i in rows], [ids[i] for i in rows],
                        image_size, channels, arrays=images[rows])


def _unreadable(error: OSError):
    raise UserError(f"cannot read {error.filename}: {error.strerror}; give the user running i2i-unlearn read access "
                    "to every folder of the dataset")


def _files(folder: Path) -> list[Path]:
    """Every file under `folder`, sorted; an unreadable folder is refused (Path.rglob would skip it)."""
    found = []
    for top, folders, names in os.walk(folder, onerror=_unreadable):  # symlinked folders not followed, as before
        folders.sort()
        found += [Path(top) / name for name in names]
    return sorted(found)


def _folders(folder: Path) -> list[str]:
    try:
        return [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError as exc:
        _unreadable(exc)


def _image_folder(root: str, split: str, image_size: int, channels: int, test_fraction: float) -> ImageDataset:
    base = Path(root)
    if not base.is_dir():
        raise UserError(f"image folder {root} does not exist; pass imagefolder:PATH with one sub-folder per class")
    has_splits = (base / "train").is_dir() and (base / "test").is_dir()
    class_root = base / split if has_splits else base
    # With train/ and test/ folders, the classes of both: a class missing from one split keeps every
    # other class's label the same in the two (an image's label indexes one list of names).
    roots = (base / "train", base / "test") if has_splits else (base,)
    class_names = sorted({name for folder in roots for name in _folders(folder)})
    if not class_names:
        raise UserError(f"no class sub-folders in {class_root}; put each class's images in its own sub-folder")
    labels, ids, paths = [], [], []
    for label, name in enumerate(class_names):
        if not (class_root / name).is_dir():
            continue  # a class this split does not have
        for path in _files(class_root / name):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            image_id = path.relative_to(base).as_posix()
            if not has_splits and held_out(image_id, test_fraction) != (split == "test"):
                continue
            labels.append(label)
            ids.append(image_id)
            paths.append(path)
    return ImageDataset(f"imagefolder:{root}", class_names, labels, ids, image_size, channels, paths=paths)


def load_dataset(spec: str, split: str = "train", image_size: int = 32, channels: int = 1,
                 test_fraction: float = DEFAULT_TEST_FRACTION) -> ImageDataset:
    """Load the `split` ("train" or "test") of the dataset named by `spec` at the model's size.

    For sets without their own test split, a `test_fraction` of each class (chosen by a hash
    of the image id, so every command agrees) is held out as the test split.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    kind, _, argument = spec.partition(":")
    if kind == "fashion-mnist":
        return _fashion_mnist(argument or None, split, image_size, channels)
    if kind == "emoji":
        return _emoji(split, image_size, channels, test_fraction)
    if kind == "imagefolder" and argument:
        return _image_folder(argument, split, image_size, channels, test_fraction)
    raise UserError(f"unknown dataset {spec!r}; use fashion-mnist, fashion-mnist:DIR, emoji or imagefolder:PATH")
