"""Does a deletion hold? Forgetting, retain quality, relearning and cost of methods on one request.

    python benchmarks/erasure.py --family mae --methods i2i,max_loss
    python benchmarks/erasure.py --family vqgan --classes "Pullover,Ankle boot" --methods max_loss --json out.json
    python benchmarks/erasure.py --model runs/mae-emoji --retrained runs/mae-emoji-retrain --dataset emoji \
        --classes "Food & Drink,Flags" --methods i2i,max_loss,i2i_max_loss

For one model (a bundled one, or `--model` with its `--dataset`) and one request (default Trouser +
Bag), each method runs with every default (a controlled run: 5% retain budget, at most 600 steps),
then goes through the same evaluation (centre inpainting, 50 test images per class: hole MSE and FID,
ratios to the original) and the relearning probe with both attackers (relearn.py; the original model
is the reference of "steps to relearn"). Where a model retrained without exactly these classes exists
(bundled, or `--retrained`), it is evaluated and probed once as the bar, and each method's
default-attacker curve is divided by its curve ("÷ retrained": the goal is at least 0.9 at every step).
Cost: the unlearning seconds against the seconds the retrained model's training took (its
train_record.json). Prints one Markdown row per model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from i2i_unlearn import UnlearnConfig, load_model, make_splits, unlearn
from i2i_unlearn.demo import DEMO_STEPS, bundled_retrained
from i2i_unlearn.evaluate import Evaluator, eval_sets
from i2i_unlearn.models import checkpoint_folder
from i2i_unlearn.relearn import relearning


def row(name: str, metrics: dict, before: dict, probe: dict, reference: list[float] | None, seconds: float | None,
        retrain_seconds: float | None) -> str:
    ratio = {f"{s} {k}": metrics[s][k] / before[s][k] for s in ("retain", "forget") for k in ("hole_mse", "fid")}
    curve = probe["default"][name]
    versus = "-"
    if reference is not None:
        versus = f"{min(u / r for u, r in zip(curve, reference)):.2f}"
    steps = [probe[a]["steps_to_relearn"][name] for a in ("default", "strong")]
    cost = "-" if seconds is None else f"{seconds:.0f} s" + (
        f" ({100 * seconds / retrain_seconds:.1f}%)" if retrain_seconds else "")
    return (f"| {name} | " + " | ".join(f"{value:.2f}x" for value in ratio.values())
            + f" | {' / '.join(f'{e:.4f}' for e in curve)} | {versus} | "
            + " / ".join("not within" if s is None else str(s) for s in steps) + f" | {cost} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="mae", help="the bundled model's family (ignored with --model)")
    parser.add_argument("--model", default=None, help="a checkpoint instead of the bundled model")
    parser.add_argument("--retrained", default=None, help="that checkpoint retrained without --classes (the bar)")
    parser.add_argument("--dataset", default="fashion-mnist", help="the data --model was trained on")
    parser.add_argument("--classes", default="Trouser,Bag")
    parser.add_argument("--methods", default="i2i,max_loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    args = parser.parse_args()
    source = args.model or f"bundled:{args.family}"
    original = load_model(source)
    steps = DEMO_STEPS.get(original.family)
    splits = make_splits(args.dataset, original.image_size, original.channels,
                         forget_classes=args.classes.split(","), seed=args.seed)
    evaluator = Evaluator(splits, eval_sets(splits, 50, args.seed), seed=args.seed, steps=steps, membership=False,
                          progress=False)
    before, _, _ = evaluator(original)
    results, reference, retrain_seconds = {}, None, None
    retrained_path = args.retrained or (None if args.model else bundled_retrained(args.family, splits.forget_classes))
    print("| model | retain MSE | retain FID | forget MSE | forget FID | default attacker: 0 / 15 / 30 / 45 / 60 | "
          "÷ retrained (lowest) | steps to relearn (default / strong) | cost |")
    print("|---|---|---|---|---|---|---|---|---|")
    if retrained_path is not None:
        retrained = load_model(retrained_path)
        retrain_seconds = json.loads((checkpoint_folder(retrained_path) / "train_record.json").read_text())["seconds"]
        metrics, _, _ = evaluator(retrained)
        # the probe fine-tunes copies, so the original loaded above serves every probe unchanged
        probe = relearning({"original": original, "retrained": retrained}, splits, sampling_steps=steps,
                           seed=args.seed, say=lambda *_: None)
        reference = probe["default"]["retrained"]
        results["retrained"] = {"metrics": metrics, "relearn": probe, "seconds": retrain_seconds}
        print(row("retrained", metrics, before, probe, None, None, None), flush=True)
    for method in args.methods.split(","):
        start = time.perf_counter()
        # unlearn changes its model in place: a fresh copy of the original for each method
        model, record = unlearn(load_model(source), splits, UnlearnConfig(method=method, seed=args.seed))
        seconds = time.perf_counter() - start
        metrics, _, _ = evaluator(model)
        probe = relearning({"original": original, method: model}, splits, sampling_steps=steps,
                           seed=args.seed, say=lambda *_: None)
        results[method] = {"metrics": metrics, "relearn": probe, "seconds": seconds,
                           "control": record["control"]["message"]}
        print(row(method, metrics, before, probe, reference, seconds, retrain_seconds), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": source, "dataset": args.dataset,
                                               "classes": splits.forget_classes, "before": before,
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
