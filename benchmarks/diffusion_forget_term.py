"""What the paper's forget term asks of a diffusion model's encoder: per embedding map and timestep band.

    python benchmarks/diffusion_forget_term.py [--model bundled:diffusion] [--dataset fashion-mnist]
        [--forget-classes Trouser,Bag] [--images 128]

For forget training images under one draw per band (centre hole, timesteps in the band), and per
map of the UNet encoder's embedding (conv_in, each down block's outputs, the mid block), the
mean squared distance between the original encoder's embedding of the image and three targets,
each divided by the map's mean square:

- hole: the official Palette code's target (pure noise in the hole, the image's known pixels kept);
- image: the paper's E0(T(n)) (the input built from a noise image; the default since this benchmark);
- other image: the embedding of a retain image under the same draw (how far apart two real images are).

Then the share of each map in the summed forget loss (hole target, uniform timesteps, the family's
training mask) and the norm of the encoder gradient it alone produces. docs/results.md holds the
output for the bundled model.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from i2i_unlearn import load_model, make_splits
from i2i_unlearn.data import make_mask
from i2i_unlearn.models import Draw

BANDS = ((0, 100), (100, 300), (300, 600), (600, 1000))


def sample(images, count, generator):
    rows = torch.randperm(len(images), generator=generator)[:count].tolist()
    return torch.stack([images[i][0] for i in rows])


def band_draw(model, images, low, high, mask, generator):
    limit = model.schedule["num_train_timesteps"]
    low, high = low * limit // 1000, max(high * limit // 1000, low * limit // 1000 + 1)
    hole = make_mask(mask, len(images), model.image_size, model.mask_cell, generator)
    return Draw(hole, {"timesteps": torch.randint(low, high, (len(images),), generator=generator),
                       "noise": torch.randn(images.shape, generator=generator),
                       "condition_noise": torch.randn(images.shape, generator=generator)})


def relative(student, target):
    return [float(F.mse_loss(a, b) / (a ** 2).mean()) for a, b in zip(student, target)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled:diffusion")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--forget-classes", default="Trouser,Bag")
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = load_model(args.model).eval()
    splits = make_splits(args.dataset, model.image_size, model.channels, forget_classes=args.forget_classes.split(","))
    forget, retain = sample(splits.forget, args.images, generator), sample(splits.retain, args.images, generator)
    with torch.no_grad():
        shapes = [tuple(t.shape[1:]) for t in model.embed(forget[:2], model.draw(forget[:2], generator=generator))]
        deep = [i for i, shape in enumerate(shapes) if shape[-2:] == shapes[-1][-2:]]
        print("maps:", ", ".join(f"{i}: {s}" for i, s in enumerate(shapes)), f"(the forget term's deep maps: {deep})")
        print("\n| timesteps (of 1000) | target | " + " | ".join(f"map {i}" for i in range(len(shapes))) + " |")
        print("|---|---|" + "---|" * len(shapes))
        for low, high in BANDS:
            draw = band_draw(model, forget, low, high, "center", generator)
            student = model.embed(forget, draw)
            targets = {"hole": model.embed_noise(forget, draw, region="hole"),
                       "image": model.embed_noise(forget, draw, region="image"),
                       "other image": model.embed(retain, draw)}
            for name, target in targets.items():
                cells = " | ".join(f"{x:.3f}" for x in relative(student, target))
                print(f"| {low}-{high} | {name} | {cells} |", flush=True)
    draw = model.draw(forget, generator=generator)
    with torch.no_grad():
        target = model.embed_noise(forget, draw, region="hole")
    student = model.embed(forget, draw)
    parameters = list(model.encoder.parameters())
    losses = [F.mse_loss(a, b) for a, b in zip(student, target)]
    total = float(sum(loss.detach() for loss in losses))
    print("\n| map | shape | share of the forget loss (hole target) | encoder gradient norm |\n|---|---|---|---|")
    for i, loss in enumerate(losses):
        grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        norm = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        print(f"| {i} | {shapes[i]} | {float(loss) / total:.3f} | {norm:.3g} |")


if __name__ == "__main__":
    main()
