"""`i2i-unlearn demo`: the bundled MAE forgets two Fashion-MNIST classes, evaluated before and after."""

from __future__ import annotations

from pathlib import Path

from .data import make_splits, subset_per_class
from .evaluate import evaluate
from .metrics import get_extractor
from .models import bundled_model_path, load_model
from .records import now, prepare_out_dir, versions, write_json
from .unlearn import UnlearnConfig, unlearn
from .viz import completion_rows, sample_grid

DEMO_FORGET_CLASSES = ["Trouser", "Bag"]


def format_table(before: dict, after: dict) -> str:
    """A small text table: one row per (set, metric), before / after / ratio."""
    lines = [f"{'set':<8}{'metric':<10}{'before':>10}{'after':>10}{'after/before':>14}"]
    for name in before:
        for metric in ("hole_mse", "psnr", "fid", "cosine"):
            b, a = before[name][metric], after[name][metric]
            ratio = f"{a / b:.2f}x" if b else "-"
            lines.append(f"{name:<8}{metric:<10}{b:>10.4f}{a:>10.4f}{ratio:>14}")
    return "\n".join(lines)


def run_demo(out: str | Path = "runs/demo", forget_classes: list[str] | None = None, eval_per_class: int = 50,
             config: UnlearnConfig | None = None, task: str = "center", cpu: bool = False) -> dict:
    """Unlearn two classes from the bundled model and write metrics.json and samples.png to `out`."""
    forget_classes = forget_classes or DEMO_FORGET_CLASSES
    config = config or UnlearnConfig()
    folder = prepare_out_dir(out)
    checkpoint = bundled_model_path()
    model = load_model(checkpoint)
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=forget_classes,
                         seed=config.seed)
    sets = {"retain": subset_per_class(splits.retain_test, eval_per_class, config.seed),
            "forget": subset_per_class(splits.forget_test, eval_per_class, config.seed)}
    extractor, cache = get_extractor(), {}
    print(f"evaluating the bundled model on {len(sets['retain'])} retain and {len(sets['forget'])} forget "
          "test images ...")
    before, before_samples = evaluate(model, sets, task, extractor, seed=config.seed, cache=cache)
    print(f"unlearning {', '.join(splits.forget_classes)} ({len(splits.forget)} forget, "
          f"{len(splits.retain)} retain training images) ...")
    model, record = unlearn(model, splits, config, out=folder / "model", cpu=cpu, source=str(checkpoint))
    after, after_samples = evaluate(model, sets, task, extractor, seed=config.seed, cache=cache)
    metrics = {"model": model.family, "method": config.method, "forget_classes": splits.forget_classes,
               "task": task, "unlearn_seconds": record["seconds"], "before": before, "after": after,
               "data": splits.info, "unlearn_config": record["config"], "versions": versions(),
               "finished": now(), "checkpoint": str(folder / "model")}
    write_json(folder / "metrics.json", metrics)
    sections = [(name, completion_rows(before_samples[name]["truth"], before_samples[name]["hole"],
                                       {"before": before_samples[name]["completed"],
                                        "after": after_samples[name]["completed"]}))
                for name in sets]
    sample_grid(sections, folder / "samples.png")
    print(format_table(before, after))
    print(f"unlearning took {record['seconds']:.0f} s; wrote {folder}/metrics.json and {folder}/samples.png")
    return metrics
