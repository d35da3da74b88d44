"""Evaluation cost: retain + forget test images, with a cold and then a warm feature cache, at
several set sizes.

    python benchmarks/eval_cost.py [--sizes 100,300,900] [--features efficientnet-lite0]

For each size (images per set), an evaluation with an empty feature cache, then one with the
real-image features on disk. Prints seconds, milliseconds and images per second, the warm/cold
ratio, and the time per image at the largest size over that at the smallest (1.0 = linear),
all measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,900", help="images per set, comma-separated")
    parser.add_argument("--features", default="efficientnet-lite0")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    from torch.utils.data import Subset

    from i2i_unlearn.data import make_splits
    from i2i_unlearn.evaluate import default_classifier, evaluate
    from i2i_unlearn.metrics import get_extractor
    from i2i_unlearn.models import load_model

    model = load_model("bundled")
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser", "Bag"])
    generator = torch.Generator().manual_seed(0)

    orders = {name: torch.randperm(len(subset), generator=generator)
              for name, subset in (("retain", splits.retain_test), ("forget", splits.forget_test))}

    def pick(subset, order, size):
        return Subset(subset.dataset, [subset.indices[i] for i in order[:size].sort().values.tolist()])

    extractor, classifier = get_extractor(args.features), default_classifier("fashion-mnist")
    os.environ["I2I_UNLEARN_CACHE"] = tempfile.mkdtemp(prefix="i2i-bench-cache-")  # never the user's cache
    evaluate(model, {"warm-up": pick(splits.retain_test, orders["retain"], 8)}, extractor=extractor,
             classifier=classifier, progress=False)  # load code and weights outside the timings
    print(f"features {extractor.name}, {torch.get_num_threads()} threads; retain + forget images per evaluation")
    print("| images | cold s | cold ms / image | cold images / s | warm s | warm ms / image | warm images / s | "
          "warm ÷ cold | forget FID cold, warm |")
    print("|---|---|---|---|---|---|---|---|---|")
    per_image = []
    for size in sizes:
        os.environ["I2I_UNLEARN_CACHE"] = tempfile.mkdtemp(prefix="i2i-bench-cache-")  # cold
        sets = {"retain": pick(splits.retain_test, orders["retain"], size),
                "forget": pick(splits.forget_test, orders["forget"], size)}
        images = sum(len(s) for s in sets.values())
        seconds, fids = [], []
        for _ in ("cold", "warm"):
            start = time.perf_counter()
            metrics, _ = evaluate(model, sets, extractor=extractor, classifier=classifier, progress=False)
            seconds.append(time.perf_counter() - start)
            fids.append(f"{metrics['forget']['fid']:.3f}")
        per_image.append([s / images for s in seconds])
        print(f"| {images} | {seconds[0]:.1f} | {1000 * seconds[0] / images:.1f} | {images / seconds[0]:.1f} | "
              f"{seconds[1]:.1f} | {1000 * seconds[1] / images:.1f} | {images / seconds[1]:.1f} | "
              f"{seconds[1] / seconds[0]:.2f} | {', '.join(fids)} |", flush=True)
    if len(sizes) > 1:
        print(f"time per image at {sizes[-1]} ÷ at {sizes[0]} per set: cold {per_image[-1][0] / per_image[0][0]:.2f}, "
              f"warm {per_image[-1][1] / per_image[0][1]:.2f} (1.00 = linear)")


if __name__ == "__main__":
    main()
