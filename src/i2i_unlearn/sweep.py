"""The forgetting / utility trade-off: the paper's method over several forget_alpha values.

One point per alpha on a plot of forget-set quality against retain-set quality, with the
original model, the baselines and the retrained model marked when a `compare.json` is given.
The user picks the trade-off from it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .data import Splits  # noqa: E402
from .errors import UserError  # noqa: E402
from .evaluate import Evaluator  # noqa: E402
from .methods import resolve_method  # noqa: E402
from .models import load_model  # noqa: E402
from .records import RunRecord, main_process, prepare_out_dir  # noqa: E402
from .unlearn import UnlearnConfig, unlearn  # noqa: E402

AXES = (("fid", "FID (vs ground truth)"), ("hole_mse", "hole MSE"))


def plot_tradeoff(points: dict, marks: dict, path: str | Path) -> None:
    """Two panels (FID, hole MSE): x = retain set (lower is better), y = forget set (higher = forgotten)."""
    figure, axes = plt.subplots(1, len(AXES), figsize=(6 * len(AXES), 4.5))
    for axis, (key, label) in zip(axes, AXES):
        alphas = sorted(points)
        xs = [points[a]["retain"][key] for a in alphas]
        ys = [points[a]["forget"][key] for a in alphas]
        axis.plot(xs, ys, "o-", color="tab:blue", label="i2i (paper), one point per forget_alpha")
        for alpha, x, y in zip(alphas, xs, ys):
            axis.annotate(f"{alpha:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        for index, (name, metrics) in enumerate(marks.items()):
            marker = {"original": "*", "retrained": "P"}.get(name, "s")
            axis.scatter(metrics["retain"][key], metrics["forget"][key], marker=marker, s=90,
                         color=f"C{index + 1}", label=name, zorder=3)
        axis.set_xlabel(f"retain {label}  (lower = utility kept)")
        axis.set_ylabel(f"forget {label}  (higher = more forgotten)")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _compare_marks(compare_file: str) -> dict:
    """Each model's metrics from a compare.json; one clear error for any other file."""
    try:
        results = json.loads(Path(compare_file).read_text())["results"]
        return {name: dict(row["metrics"]) for name, row in results.items()}
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise UserError(f"--compare {compare_file} is not a compare.json written by 'i2i-unlearn compare'; pass "
                        "that file or leave --compare out") from None


def sweep(model_path: str, splits: Splits, sets: dict, config: UnlearnConfig, alphas: list[float],
          out: str | Path, compare_file: str | None = None, task: str | None = None, cpu: bool = False,
          features: str = "efficientnet-lite0", classifier: str | None = "auto", steps: int | None = None) -> dict:
    """Unlearn once per forget_alpha, evaluate each, write sweep.json and tradeoff.png."""
    marks = _compare_marks(compare_file) if compare_file else {}  # a wrong file fails now, not after the work
    config = replace(config, method=resolve_method(config.method, controlled=False))  # auto: the paper's
    evaluator = Evaluator(splits, sets, task, features, classifier, config.seed, steps, membership=False)
    folder = prepare_out_dir(out)
    record = RunRecord("sweep", {"model": str(model_path), "alphas": alphas, "task": task,
                                 "unlearn": vars(config), "compare": compare_file, "features": features,
                                 "classifier": classifier, "sampling_steps": steps})
    points = {}
    for alpha in alphas:
        # each point at its own alpha: a sweep is the hand-set trade-off, so no control
        model, _ = unlearn(load_model(model_path), splits, replace(config, forget_alpha=alpha, retain_budget=None),
                           cpu=cpu,
                           source=str(model_path))
        points[alpha], _, _ = evaluator(model)
        if main_process():
            print(f"forget_alpha={alpha:g}: " + ", ".join(
                f"{s} FID {points[alpha][s]['fid']:.2f} MSE {points[alpha][s]['hole_mse']:.4f}" for s in sets))
    payload = record.finish(data=splits.info, points={str(a): p for a, p in points.items()},
                            evaluation=evaluator.describe(), features=evaluator.extractor.name)
    if not main_process():  # several processes shared the work; the main one writes
        return payload
    plot_tradeoff(points, marks, folder / "tradeoff.png")
    record.write(folder / "sweep.json")
    return payload
