"""`i2i-unlearn demo`: a bundled model (MAE, diffusion or VQ-GAN) forgets two Fashion-MNIST classes,
evaluated before and after. With a degradation task (`--task sketch`, ...) the bundled diffusion model
trained for it forgets two classes of its dataset instead.

It also evaluates the bundled model retrained without those classes (the gold standard) when the
forget classes are the ones it left out, runs the membership inference attack and the relearning
probe (relearn.py: how fast a short fine-tune brings the forgotten classes back) on all three, and
ends with an HTML report of everything.
"""

from __future__ import annotations

import json
from pathlib import Path

from .audit import add_metrics
from .data import make_splits
from .errors import UserError
from .evaluate import Evaluator, eval_sets
from .models import ASSETS, DEFAULT_BUNDLED, bundled_for_task, load_model
from .relearn import ATTACKERS, certificate_summary, describe, relearning
from .records import invocation_field, main_process, now, prepare_out_dir, versions, write_json
from .report import write_report
from .unlearn import UnlearnConfig, unlearn
from .viz import completion_rows, control_plot, relearn_plot, sample_grid, tsne_plot

DEMO_FORGET_CLASSES = ["Trouser", "Bag"]
# The classes a demo forgets by default, per dataset of a bundled model.
DEMO_CLASSES = {"fashion-mnist": DEMO_FORGET_CLASSES, "emoji": ["Animals & Nature", "Food & Drink"]}
# Sampling steps of the demo per family: DDIM steps for diffusion, sized to finish in minutes on 2 cores.
DEMO_STEPS = {"diffusion": 25}
TABLE_METRICS = ("hole_mse", "psnr", "ssim", "fid", "kid", "cosine", "class_accuracy")


def bundled_retrained(family: str, forget_classes: list[str], checkpoint: str | None = None) -> Path | None:
    """The bundled model of `family` (the checkpoint named `checkpoint`, default the family's) retrained
    without exactly `forget_classes`."""
    for record in sorted(ASSETS.glob(f"{checkpoint or DEFAULT_BUNDLED[family]}-retrain-*/train_record.json")):
        excluded = json.loads(record.read_text())["data"]["excluded_classes"]
        if sorted(excluded) == sorted(forget_classes):
            return record.parent
    return None


def format_table(columns: dict[str, dict]) -> str:
    """A small text table: one row per (set, metric), one column per model, and after/before."""
    names = list(columns)
    lines = [f"{'set':<8}{'metric':<16}" + "".join(f"{n:>11}" for n in names) + f"{'after/before':>14}"]
    for set_name in columns["before"]:
        for metric in TABLE_METRICS:
            values = [columns[n][set_name].get(metric) for n in names]
            if values[0] is None:
                continue
            before, after = columns["before"][set_name][metric], columns["after"][set_name][metric]
            ratio = f"{after / before:.2f}x" if before else "-"
            lines.append(f"{set_name:<8}{metric:<16}" + "".join(f"{v:>11.4g}" for v in values) + f"{ratio:>14}")
    return "\n".join(lines)


def run_demo(out: str | Path = "runs/demo", forget_classes: list[str] | None = None, eval_per_class: int = 50,
             config: UnlearnConfig | None = None, task: str | None = None, cpu: bool = False,
             features: str = "efficientnet-lite0", classifier: str | None = "auto", family: str = "mae",
             steps: int | None = None, sign_key=None, attackers: tuple[str, ...] = ATTACKERS) -> dict:
    """Unlearn two classes from the bundled model of `family`; write metrics.json, samples.png,
    tsne.png, report.html. `steps`: sampling steps (default: the demo's choice for the family);
    `sign_key`: an Ed25519 private key that signs the deletion certificate; `attackers`: the
    relearning probes run on the original, unlearned and retrained models (relearn.py; () for none)."""
    if family not in DEFAULT_BUNDLED:
        raise UserError(f"no bundled {family!r} model; demo --model takes {', '.join(DEFAULT_BUNDLED)}")
    config = config or UnlearnConfig()
    checkpoint = bundled_for_task(family, task)
    model = load_model(checkpoint)
    task = task or model.default_task
    model.check_task(task)
    dataset = json.loads((checkpoint / "train_record.json").read_text())["config"]["dataset"]
    forget_classes = forget_classes or DEMO_CLASSES[dataset]
    steps = DEMO_STEPS.get(family) if steps is None else steps
    model.check_steps(steps)
    splits = make_splits(dataset, model.image_size, model.channels, forget_classes=forget_classes,
                         seed=config.seed)
    sets = eval_sets(splits, eval_per_class, config.seed)
    evaluator = Evaluator(splits, sets, task, features, classifier, config.seed, steps, eval_per_class)
    extractor = evaluator.extractor
    folder = prepare_out_dir(out)
    main = main_process()  # several processes share the work; the main one writes and prints

    def say(*text):
        if main:
            print(*text)
    if model.sampler_steps:
        shown = steps if steps is not None else getattr(model, "default_steps", None)
        say(f"{family}: completions use {shown} {model.sampler_steps} (--sampling-steps to change)")

    def measure(name: str, network, keep: bool = False):
        say(f"evaluating {name} on {len(sets['retain'])} retain and {len(sets['forget'])} forget test images ...")
        return evaluator(network, keep_outputs=keep)

    before, before_samples, auc_before = measure("the bundled model", model)
    say(f"unlearning {', '.join(splits.forget_classes)} ({len(splits.forget)} forget, "
        f"{len(splits.retain)} retain training images) ...")
    model, record = unlearn(model, splits, config, out=folder / "model", cpu=cpu, source=str(checkpoint),
                            sign_key=sign_key)
    after, after_samples, auc_after = measure("the unlearned model", model, keep=True)
    columns = {"before": before, "after": after}
    completions = {"before": before_samples, "after": after_samples}
    auc = {"original": auc_before, "unlearned": auc_after}
    retrained_path = bundled_retrained(family, splits.forget_classes, checkpoint.name)
    if retrained_path is not None:
        columns["retrained"], completions["retrained"], auc["retrained"] = measure(
            "the model retrained without them", load_model(retrained_path))

    relearn = None
    if attackers:
        probed = {"unlearned": model, "original": load_model(checkpoint)}
        if retrained_path is not None:
            probed["retrained"] = load_model(retrained_path)
        results = relearning(probed, splits, attackers, steps, config.seed, say=say)
        relearn = {**results.get("default", {}), **({"strong": results["strong"]} if "strong" in results else {})}
    metrics = {**invocation_field(), "model": str(checkpoint), "family": model.family,
               "method": record["config"]["method"],  # what ran ("auto" resolved)
               "forget_classes": splits.forget_classes, "task": task, "features": extractor.name,
               "unlearn_seconds": record["seconds"],
               "before": before, "after": after, "retrained": columns.get("retrained"),
               "retrained_model": str(retrained_path) if retrained_path else None,
               "membership_inference": auc, "relearn": relearn,
               "evaluation": evaluator.describe(),
               "data": splits.info, "unlearn_config": record["config"], "control": record.get("control"),
               "versions": versions(),
               "finished": now(), "checkpoint": str(folder / "model")}
    if not main:
        return metrics
    write_json(folder / "metrics.json", metrics)
    add_metrics(folder / "model", {"before": before, "after": after},
                {**evaluator.describe(), "features": features, "classifier": classifier,
                 "eval_per_class": eval_per_class}, key=sign_key,
                relearning=certificate_summary(results) if attackers else None)
    columns_shown = 8
    sections = [(name, completion_rows(before_samples[name]["truth"][:columns_shown],
                                       before_samples[name]["hole"][:columns_shown],
                                       {label: samples[name]["completed"][:columns_shown]
                                        for label, samples in completions.items()}, model.degradation))
                for name in sets]
    sample_grid(sections, folder / "samples.png")
    tsne_plot({"unlearned-forget": after_samples["forget"]["features"],
               "unlearned-retain": after_samples["retain"]["features"],
               "real-forget": after_samples["forget"]["real_features"],
               "real-retain": after_samples["retain"]["real_features"]}, folder / "tsne.png", seed=config.seed,
              title=f"t-SNE of {extractor.name} embeddings after unlearning")
    if record.get("control"):
        control_plot(record["control"], folder / "control.png")
    if relearn and "steps" in relearn:
        relearn_plot(relearn, folder / "relearn.png")
    report = write_report([folder], folder / "report.html")
    print(format_table(columns))
    print("membership inference AUC (0.5 = cannot tell members): "
          + ", ".join(f"{name} {value:.3f}" for name, value in auc.items()))
    if record.get("control"):
        print(record["control"]["message"])
    if attackers:
        print("\n".join(describe(results)))
    print(f"unlearning took {record['seconds']:.0f} s; wrote {folder}/metrics.json, samples.png, tsne.png "
          f"and {report.name}")
    return metrics
