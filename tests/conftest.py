"""Shared fixtures: tiny models and small real image folders, all built offline."""

import os
import tempfile

if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n 2`: a thread per worker, else they fight for the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Cached real-image features go to a fresh folder, so tests neither read nor fill the user's cache.
os.environ["I2I_UNLEARN_CACHE"] = tempfile.mkdtemp(prefix="i2i-unlearn-cache-")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from i2i_unlearn import relearn  # noqa: E402
from i2i_unlearn.data import load_dataset  # noqa: E402
from i2i_unlearn.models import FAMILIES, create_model  # noqa: E402
from i2i_unlearn.train import TrainConfig, train  # noqa: E402

TINY = FAMILIES["mae"].tiny_settings()


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return create_model("mae", image_size=16, channels=1, **TINY)


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    """Each registered model family's name: tests that take it run once per family."""
    return request.param


# Every task each family declares: filling holes, and each degradation it can learn to invert.
FAMILY_TASKS = [(name, None) for name in sorted(FAMILIES)] + [
    (name, kind) for name in sorted(FAMILIES) for kind in FAMILIES[name].degradations]


@pytest.fixture(params=FAMILY_TASKS, ids=lambda pair: "-".join(p for p in pair if p))
def family_model(request):
    """A tiny freshly initialised model of each family for each of its tasks (16x16, grey; colour for
    colourisation)."""
    family, degradation = request.param
    torch.manual_seed(0)
    settings = {**FAMILIES[family].tiny_settings(), **({"degradation": degradation} if degradation else {})}
    return create_model(family, image_size=16, channels=3 if degradation == "colourise" else 1, **settings)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny MAE trained for a few steps on Fashion-MNIST at 16x16, saved like any checkpoint."""
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    train(TrainConfig(image_size=16, model=TINY, steps=30, batch_size=32, warmup_steps=5, lr=2e-3), folder)
    return folder


@pytest.fixture(scope="session", params=sorted(FAMILIES))
def family_checkpoint(request, tmp_path_factory):
    """A tiny model of each family trained for a few steps on Fashion-MNIST at 16x16, saved like any checkpoint."""
    folder = tmp_path_factory.mktemp("ckpt") / request.param
    train(TrainConfig(family=request.param, image_size=16, model=FAMILIES[request.param].tiny_settings(), steps=20,
                      batch_size=16, warmup_steps=5, lr=2e-3, tokenizer_steps=10), folder)
    return folder


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """Real images as files: 3 Fashion-MNIST classes, 12 images each, PNG and JPEG, grey and colour."""
    root = tmp_path_factory.mktemp("folder")
    data = load_dataset("fashion-mnist", "train", 28, 1)
    counts = {}
    for index in range(len(data)):
        label = data.labels[index]
        name = data.class_names[label].replace("/", "-")
        if label > 2 or counts.get(name, 0) >= 12:
            continue
        counts[name] = counts.get(name, 0) + 1
        array = (data[index][0][0].numpy() * 255).astype(np.uint8)
        (root / name).mkdir(exist_ok=True)
        image = Image.fromarray(array)
        if counts[name] % 3 == 0:
            image.convert("RGB").save(root / name / f"img{counts[name]:02d}.jpg")
        else:
            image.save(root / name / f"img{counts[name]:02d}.png")
        if sum(counts.values()) == 36:
            break
    return root


def small_attackers(name, seed=0):
    """Both attackers of the probe, shrunk to a few steps and images (the test's time)."""
    settings = dict(images=4, batch_size=4, eval_images=6, seed=seed)
    if name == "default":
        return [relearn.ProbeConfig(steps=4, lr=1e-4, eval_every=2, **settings)]
    return [relearn.ProbeConfig(steps=4, lr=lr, eval_every=2, **settings) for lr in relearn.STRONG_LRS]


def nudged_copy(model, seed: int = 1, size: float = 0.05):
    """A copy of `model` with every weight moved a little: a stand-in for a calibration model (one that
    never trained on the forget images), which differs from the model everywhere."""
    import copy

    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in other.parameters():
            parameter.add_(size * torch.randn(parameter.shape, generator=generator))
    return other


@pytest.fixture
def make_method():
    """`create_method`, with a calibration model (a nudged copy) for the methods that need one."""
    from i2i_unlearn.methods import METHODS, create_method

    def make(name, model, **settings):
        if METHODS[name].needs_calibration:
            settings.setdefault("calibration", nudged_copy(model))
        return create_method(name, model, **settings)

    return make


def forget_list_request(folder, image_size: int = 16, count: int = 6, retain_limit: int = 64):
    """A small forget list of Fashion-MNIST Bag training images written to `folder`, and its splits."""
    from i2i_unlearn.data import make_splits

    probe = make_splits("fashion-mnist", image_size, 1, forget_classes=["Bag"])
    listing = folder / "forget.txt"
    listing.write_text("\n".join(probe.forget.dataset.ids[i] for i in probe.forget.indices[:count]))
    return make_splits("fashion-mnist", image_size, 1, forget_list=str(listing), retain_limit=retain_limit)


def calibrated_request(name, model, splits, config, folder):
    """(splits, config) of a request that `name` can run: unchanged, or for a method that needs a
    calibration model a forget list with a nudged copy of `model` saved in `folder` as that model."""
    import dataclasses

    from i2i_unlearn.methods import METHODS

    if not METHODS[name].needs_calibration:
        return splits, config
    nudged_copy(model).save_pretrained(folder / "calibration")
    return (forget_list_request(folder, model.image_size),
            dataclasses.replace(config, calibration=str(folder / "calibration")))
