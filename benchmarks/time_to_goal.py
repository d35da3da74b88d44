"""How long the paper's method takes to reach the goal figures, against retraining from scratch, per family.

    python benchmarks/time_to_goal.py [--families mae,diffusion,vqgan] [--target 3]

For each bundled family: a controlled unlearning run (Trouser + Bag, every default but the forget
target, `--target` times the original forget validation error: the goal figure's 3x) that stops
when its validation split says the target is reached; then the held-out test sets (50 images per
class, centre inpainting) say whether the goal figures hold (retain hole MSE at most 1.1x, forget
hole MSE at least 3x or the retrained model's level). Its seconds are set against the seconds the
bundled retrained model's training took (its train_record.json, the bundled recipe on these
machines). Prints one Markdown row per family.
"""

from __future__ import annotations

import argparse
import json
import time

from i2i_unlearn import UnlearnConfig, load_model, make_splits, unlearn
from i2i_unlearn.demo import bundled_retrained
from i2i_unlearn.evaluate import Evaluator, eval_sets
from i2i_unlearn.models import checkpoint_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="mae,diffusion,vqgan")
    parser.add_argument("--target", default="3")
    args = parser.parse_args()
    print("| family | unlearning s | steps | outcome | retain MSE | forget MSE | retrained forget MSE | "
          "goal met | retraining s | unlearning ÷ retraining |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family in args.families.split(","):
        original = load_model(f"bundled:{family}")
        splits = make_splits("fashion-mnist", original.image_size, original.channels, forget_classes=["Trouser", "Bag"])
        evaluator = Evaluator(splits, eval_sets(splits, 50), membership=False, progress=False)
        before, _, _ = evaluator(original)
        retrained_path = bundled_retrained(family, splits.forget_classes)
        reference, _, _ = evaluator(load_model(retrained_path))
        retrain_seconds = json.loads((checkpoint_folder(retrained_path) / "train_record.json").read_text())["seconds"]
        start = time.perf_counter()
        model, record = unlearn(original, splits, UnlearnConfig(forget_target=args.target))
        seconds = time.perf_counter() - start
        after, _, _ = evaluator(model)
        ratio = {s: after[s]["hole_mse"] / before[s]["hole_mse"] for s in ("retain", "forget")}
        retrained_ratio = reference["forget"]["hole_mse"] / before["forget"]["hole_mse"]
        met = ratio["retain"] <= 1.1 and ratio["forget"] >= min(3.0, retrained_ratio)
        control = record["control"]
        print(f"| {family} | {seconds:.0f} | {control['steps_run']} (kept {control['kept_step']}) | "
              f"{control['outcome']} | {ratio['retain']:.2f}x | {ratio['forget']:.2f}x | {retrained_ratio:.2f}x | "
              f"{'yes' if met else 'no'} | {retrain_seconds:.0f} | {100 * seconds / retrain_seconds:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
