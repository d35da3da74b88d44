"""Fixed forget_alpha against the controlled run (retain budget + forget target), per request.

    python benchmarks/retain_budget.py "Trouser,Bag" "Sandal,Shirt" "Pullover,Ankle boot" ...
    python benchmarks/retain_budget.py --dataset emoji --model runs/mae-emoji "Animals & Nature,Food & Drink"

For each forget-class choice: the model evaluated before, after the fixed-alpha defaults
(`--fixed-alpha`: 300 steps at forget_alpha 0.2) and after the controlled defaults (budget 5%,
target "noise"), on held-out test images (centre inpainting, `--per-class` per class; evaluation
never sees the validation split the controlled run decides on). With `--retrained` (or the bundled
retrained model for the request, when there is one) also the distance of the forget completions
to the retrained model's. Prints one Markdown row per run and writes everything to `--out` (JSON).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from i2i_unlearn import UnlearnConfig, load_model, make_splits, unlearn
from i2i_unlearn.compare import distance_to
from i2i_unlearn.evaluate import Evaluator, eval_sets
from i2i_unlearn.demo import bundled_retrained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choices", nargs="+", help="comma-separated forget classes, one argument per request")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--retrained", default=None, help="a model retrained without the (single) request")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--out", default=None, help="JSON file for every number (default: print only)")
    args = parser.parse_args()
    results = []
    print("| dataset | forget classes | run | retain MSE | retain FID | forget MSE | forget FID | "
          "forget MSE to retrained | outcome | steps | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for choice in args.choices:
        original = load_model(args.model)
        splits = make_splits(args.dataset, original.image_size, original.channels, forget_classes=choice.split(","))
        sets = eval_sets(splits, args.per_class)
        evaluator = Evaluator(splits, sets, membership=False, progress=False)
        before, before_outputs, _ = evaluator(original, keep_outputs=True)
        retrained_path = args.retrained or (bundled_retrained(original.family, splits.forget_classes)
                                            if args.model.startswith("bundled") else None)
        reference = evaluator(load_model(retrained_path), keep_outputs=True) if retrained_path else None
        rows = {"original": (before, before_outputs, None, 0.0)}
        if reference is not None:
            rows["retrained"] = (reference[0], reference[1], None, None)
        for name, config in (("fixed", UnlearnConfig(retain_budget=None)), ("controlled", UnlearnConfig())):
            start = time.perf_counter()
            model, record = unlearn(load_model(args.model), splits, config)
            seconds = time.perf_counter() - start
            after, outputs, _ = evaluator(model, keep_outputs=True)
            rows[name] = (after, outputs, record, seconds)
        for name, (metrics, outputs, record, seconds) in rows.items():
            ratio = {f"{s}_{m}": metrics[s][m] / before[s][m] for s in ("retain", "forget") for m in ("hole_mse", "fid")}
            distance = distance_to(reference[1]["forget"], outputs["forget"])["hole_mse"] if reference else None
            control = (record or {}).get("control") or {}
            steps = control.get("steps_run") or (record["config"]["steps"] if record else None)
            result = {"dataset": args.dataset, "forget_classes": splits.forget_classes, "run": name,
                      "metrics": metrics, "ratios": ratio, "forget_mse_to_retrained": distance,
                      "outcome": control.get("outcome"), "message": control.get("message"),
                      "kept_step": control.get("kept_step"), "steps": steps, "seconds": seconds,
                      "control": control or None}
            results.append(result)

            def cell(set_name: str, metric: str, digits: str) -> str:
                return f"{metrics[set_name][metric]:{digits}} ({ratio[f'{set_name}_{metric}']:.2f}x)"

            print(f"| {args.dataset} | {', '.join(splits.forget_classes)} | {name} | {cell('retain', 'hole_mse', '.4f')} | "
                  f"{cell('retain', 'fid', '.1f')} | {cell('forget', 'hole_mse', '.4f')} | {cell('forget', 'fid', '.1f')} | "
                  f"{'–' if distance is None else f'{distance:.4f}'} | {control.get('outcome') or '–'} | "
                  f"{steps if steps is not None else '–'} | {'–' if seconds is None else f'{seconds:.0f}'} |", flush=True)
            if control:
                print(f"<!-- {control['message']} -->", flush=True)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
