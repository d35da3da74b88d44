"""How long the paper's method takes to reach the goal figures, against retraining from scratch, per family.

    python benchmarks/time_to_goal.py [--families mae,diffusion,vqgan] [--target 3]
    python benchmarks/time_to_goal.py --fixed-alpha --settle 0.02   # the paper's run, stopped when settled

For each bundled family: a controlled unlearning run (Trouser + Bag, every default but the forget
target, `--target` times the original forget validation error: the goal figure's 3x) that stops
when its validation split says the target is reached; then the held-out test sets (50 images per
class, centre inpainting) say whether the goal figures hold (retain hole MSE at most 1.1x, forget
hole MSE at least 3x or the retrained model's level). Its seconds are set against the seconds the
bundled retrained model's training took (its train_record.json, the bundled recipe on these
machines). With `--fixed-alpha` the run is the paper's instead (300 steps at forget_alpha 0.2),
and `--settle TOL` stops it once its terms have settled. Prints one Markdown row per family.
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
    parser.add_argument("--fixed-alpha", action="store_true")
    parser.add_argument("--settle", type=float, default=None)
    parser.add_argument("--lr", type=float, default=UnlearnConfig.lr)
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
        config = UnlearnConfig(forget_target=args.target, settle=args.settle, lr=args.lr,
                               retain_budget=None if args.fixed_alpha else UnlearnConfig.retain_budget)
        model, record = unlearn(original, splits, config)
        seconds = time.perf_counter() - start
        after, _, _ = evaluator(model)
        ratio = {s: after[s]["hole_mse"] / before[s]["hole_mse"] for s in ("retain", "forget")}
        retrained_ratio = reference["forget"]["hole_mse"] / before["forget"]["hole_mse"]
        met = ratio["retain"] <= 1.1 and ratio["forget"] >= min(3.0, retrained_ratio)
        control = record.get("control") or {"steps_run": record["steps_run"], "kept_step": record["steps_run"],
                                            "outcome": "settled" if "settled_at" in record else "all steps"}
        print(f"| {family} | {seconds:.0f} | {control['steps_run']} (kept {control['kept_step']}) | "
              f"{control['outcome']} | {ratio['retain']:.2f}x | {ratio['forget']:.2f}x | {retrained_ratio:.2f}x | "
              f"{'yes' if met else 'no'} | {retrain_seconds:.0f} | {100 * seconds / retrain_seconds:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
