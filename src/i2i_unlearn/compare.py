"""Side by side: the original model, every unlearning method and the retrained model.

All methods get the same data, step budget and seed, and every model goes through the same
evaluation. Besides each model's own metrics, each one's distance to the retrained model's
completions of the forget test set is reported (the honest question: how close does a method
land to retraining without the forget set, at what cost), and how fast a short fine-tune on forget
images brings the forgotten classes back (the relearning probe, relearn.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from .data import Splits
from .evaluate import Evaluator
from .metrics import embedding_cosine, hole_mse
from .models import checkpoint_folder, load_model
from .records import RunRecord, main_process, prepare_out_dir
from .relearn import ATTACKERS, relearning
from .unlearn import UnlearnConfig, unlearn
from .viz import completion_rows, sample_grid

METRICS = (("fid", "FID"), ("kid", "KID"), ("is", "IS"), ("cosine", "cosine"), ("hole_mse", "hole MSE"),
           ("ssim", "SSIM"), ("class_accuracy", "class acc."))


def distance_to(reference: dict, outputs: dict) -> dict:
    """How far `outputs` (completions of one set) are from the `reference` model's completions."""
    return {"hole_mse": float(hole_mse(outputs["completed"], reference["completed"], outputs["hole"]).mean()),
            "cosine": float(embedding_cosine(outputs["features"], reference["features"]).mean())}


def markdown_table(results: dict) -> str:
    """Results as a Markdown table like the paper's Table 1, plus distance to the retrained model."""
    head = ["model"] + [f"{s} {label}" for s in ("retain", "forget") for _, label in METRICS]
    head += ["forget: MSE to retrained", "forget: cosine to retrained", "MIA AUC"]
    attackers = list(dict.fromkeys(a for row in results.values() for a in row.get("steps_to_relearn", {})))
    head += [f"relearnt at ({a} attacker)" for a in attackers] + ["seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in results.items():
        cells = [name]
        for set_name in ("retain", "forget"):
            values = row["metrics"][set_name]
            cells += [f"{values[key]:.4g}" if key in values else "-" for key, _ in METRICS]
        distance = row.get("to_retrained")
        cells += [f"{distance['hole_mse']:.4g}", f"{distance['cosine']:.4f}"] if distance else ["-", "-"]
        cells.append(f"{row['membership_auc']:.3f}" if row.get("membership_auc") is not None else "-")
        for attacker in attackers:
            step = row.get("steps_to_relearn", {}).get(attacker, "-")
            cells.append("not within the probe" if step is None else str(step))
        cells.append(f"{row['seconds']:.0f}" if row.get("seconds") is not None else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(model_path: str, splits: Splits, sets: dict, config: UnlearnConfig, methods: list[str],
            out: str | Path, retrained: str | None = None, task: str | None = None, cpu: bool = False,
            features: str = "efficientnet-lite0", classifier: str | None = "auto",
            eval_per_class: int | None = None, steps: int | None = None,
            attackers: tuple[str, ...] = ATTACKERS) -> dict:
    """Unlearn with every method in `methods`, evaluate everything, probe every model's relearning
    with `attackers` (relearn.relearning; () for none), write compare.{json,md} and samples.png."""
    evaluator = Evaluator(splits, sets, task, features, classifier, config.seed, steps, eval_per_class)
    folder = prepare_out_dir(out)
    record = RunRecord("compare", {"model": str(model_path), "retrained": retrained, "methods": methods,
                                   "task": task, "unlearn": vars(config), "features": features,
                                   "classifier": classifier, "sampling_steps": steps})
    results, outputs, models = {}, {}, {}

    def measure(name: str, model, seconds):
        metrics, kept, auc = evaluator(model, keep_outputs=True)
        results[name] = {"metrics": metrics, "seconds": seconds, "membership_auc": auc}
        outputs[name] = kept
        models[name] = model

    original = load_model(model_path)
    measure("original", original, None)
    for method in methods:
        start = time.perf_counter()
        model, _ = unlearn(load_model(model_path), splits, replace(config, method=method),
                           out=folder / "models" / method, cpu=cpu, source=str(model_path))
        measure(method, model, time.perf_counter() - start)
    if retrained:
        retrained_record = checkpoint_folder(retrained) / "train_record.json"
        seconds = None
        if retrained_record.exists():
            seconds = json.loads(retrained_record.read_text()).get("seconds")
        measure("retrained", load_model(retrained), seconds)
        for name in results:
            results[name]["to_retrained"] = distance_to(outputs["retrained"]["forget"], outputs[name]["forget"])
    probe = relearning(models, splits, attackers, steps, config.seed) if attackers else {}
    for name in results if probe else ():
        results[name]["steps_to_relearn"] = {a: probe[a]["steps_to_relearn"][name] for a in attackers}
    payload = record.finish(data=splits.info, results=results, family=original.family,
                            evaluation=evaluator.describe(), features=evaluator.extractor.name, relearn=probe)
    if not main_process():  # several processes shared the work; the main one writes
        return payload
    record.write(folder / "compare.json")
    table = markdown_table(results)
    (folder / "compare.md").write_text(table + "\n")
    columns = 8
    sections = [(set_name, completion_rows(outputs["original"][set_name]["truth"][:columns],
                                           outputs["original"][set_name]["hole"][:columns],
                                           {name: outputs[name][set_name]["completed"][:columns]
                                            for name in outputs}, original.degradation))
                for set_name in sets]
    sample_grid(sections, folder / "samples.png")
    print(table)
    return payload
