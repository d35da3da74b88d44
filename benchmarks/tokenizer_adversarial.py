"""Does the VQ-GAN's adversarial term pay off at this size? Two tokenizers, one run each.

    OMP_NUM_THREADS=1 python benchmarks/tokenizer_adversarial.py train --out runs/tok --weight 0.1 --name gan &
    OMP_NUM_THREADS=1 python benchmarks/tokenizer_adversarial.py train --out runs/tok --weight 0 --name plain &
    wait; python benchmarks/tokenizer_adversarial.py compare runs/tok/gan runs/tok/plain

`train` trains a default tokenizer (`i2i_unlearn.tokenizer`, the recipe `train --family vqgan`
uses) on the Fashion-MNIST training set with the given adversarial weight and saves it as a
VQModel folder. `compare` reconstructs the same test images with each and prints, side by side,
reconstruction MSE, FID of the reconstructions against the images (EfficientNet-Lite0
features) and codebook usage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from i2i_unlearn.data import load_dataset
from i2i_unlearn.metrics import get_extractor
from i2i_unlearn.metrics.fid import frechet_distance
from i2i_unlearn.models.vqgan import load_tokenizer
from i2i_unlearn.tokenizer import (TokenizerConfig, decode_codes, make_tokenizer, quantize, tokenizer_quality,
                                   train_tokenizer)


def train(args) -> None:
    data = load_dataset("fashion-mnist", "train", 32, 1)
    torch.manual_seed(args.seed)
    tokenizer = make_tokenizer()
    started = time.time()
    history = train_tokenizer(tokenizer, data, TokenizerConfig(steps=args.steps, adversarial_weight=args.weight),
                              seed=args.seed)
    folder = Path(args.out) / args.name
    tokenizer.save_pretrained(str(folder))
    (folder / "history.json").write_text(json.dumps({"seconds": round(time.time() - started), "weight": args.weight,
                                                     "steps": args.steps, "history": history}, indent=1))


@torch.no_grad()
def compare(args) -> None:
    test = load_dataset("fashion-mnist", "test", 32, 1)
    images = torch.stack([test[i][0] for i in range(args.images)])
    extractor = get_extractor()
    real = torch.cat([extractor(images[start:start + 250]) for start in range(0, len(images), 250)])
    print("| tokenizer | adversarial weight | train seconds | recon. MSE | recon. FID | codes used |")
    print("|---|---|---|---|---|---|")
    for folder in map(Path, args.folders):
        tokenizer = load_tokenizer(folder)
        codes = [quantize(tokenizer, images[start:start + 250])[1] for start in range(0, len(images), 250)]
        fake = torch.cat([extractor(decode_codes(tokenizer, z_q).clamp(0, 1)) for z_q in codes])
        quality = tokenizer_quality(tokenizer, images)
        info = json.loads((folder / "history.json").read_text())
        print(f"| {folder.name} | {info['weight']} | {info['seconds']} | {quality['reconstruction_mse']:.5f} | "
              f"{frechet_distance(real, fake):.2f} | {quality['codes_used']}/{quality['codebook_size']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train")
    run.add_argument("--out", required=True)
    run.add_argument("--name", required=True)
    run.add_argument("--weight", type=float, required=True)
    run.add_argument("--steps", type=int, default=2500)
    run.add_argument("--seed", type=int, default=0)
    check = commands.add_parser("compare")
    check.add_argument("folders", nargs="+")
    check.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    train(args) if args.command == "train" else compare(args)


if __name__ == "__main__":
    main()
