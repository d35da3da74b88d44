"""Evaluation cost: 1,000 retain + 1,000 forget test images, with a cold and then a warm feature cache.

    python benchmarks/eval_cost.py [--per-set 1000] [--features efficientnet-lite0]

Prints seconds per evaluation, per image, and the warm/cold ratio measured in this one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-set", type=int, default=1000)
    parser.add_argument("--features", default="efficientnet-lite0")
    args = parser.parse_args()
    os.environ["I2I_UNLEARN_CACHE"] = tempfile.mkdtemp(prefix="i2i-bench-cache-")

    from torch.utils.data import Subset

    from i2i_unlearn.data import make_splits
    from i2i_unlearn.evaluate import default_classifier, evaluate
    from i2i_unlearn.metrics import get_extractor
    from i2i_unlearn.models import load_model

    model = load_model("bundled")
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=["Trouser", "Bag"])
    generator = torch.Generator().manual_seed(0)

    def pick(subset):
        rows = torch.randperm(len(subset), generator=generator)[:args.per_set].sort().values.tolist()
        return Subset(subset.dataset, [subset.indices[i] for i in rows])

    sets = {"retain": pick(splits.retain_test), "forget": pick(splits.forget_test)}
    images = sum(len(s) for s in sets.values())
    extractor, classifier = get_extractor(args.features), default_classifier("fashion-mnist")
    print(f"{images} images ({', '.join(f'{k} {len(v)}' for k, v in sets.items())}), features {extractor.name}, "
          f"{torch.get_num_threads()} threads")
    timings = []
    for label in ("cold cache", "warm cache (real-image features from disk)"):
        start = time.perf_counter()
        metrics, _ = evaluate(model, sets, extractor=extractor, classifier=classifier, progress=False)
        seconds = time.perf_counter() - start
        timings.append(seconds)
        print(f"{label}: {seconds:.1f} s, {1000 * seconds / images:.1f} ms per image; "
              f"forget FID {metrics['forget']['fid']:.3f}")
    print(f"warm / cold = {timings[1] / timings[0]:.2f}")


if __name__ == "__main__":
    main()
