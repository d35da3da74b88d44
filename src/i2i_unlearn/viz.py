"""Pictures: sample grids of ground truth / masked input / completions."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from .data import apply_mask, degrade


def _to_pil(images: torch.Tensor, scale: int) -> list[Image.Image]:
    pictures = []
    for image in images:
        array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        mode = "L" if array.shape[2] == 1 else "RGB"
        picture = Image.fromarray(array[:, :, 0] if mode == "L" else array, mode).convert("RGB")
        pictures.append(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST))
    return pictures


def sample_grid(sections: list[tuple[str, list[tuple[str, torch.Tensor]]]], path: str | Path,
                scale: int = 3, gap: int = 4) -> None:
    """Save a labelled grid: per section (e.g. "retain"), one row per (label, images) pair."""
    label_width = 150
    rows = [(f"{section}: {label}", images) for section, pairs in sections for label, images in pairs]
    columns = max(len(images) for _, images in rows)
    cell = rows[0][1].shape[-1] * scale
    width = label_width + columns * (cell + gap)
    height = len(rows) * (cell + gap) + gap * 2 * len(sections)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = gap
    previous = None
    for title, images in rows:
        section = title.split(":")[0]
        if previous is not None and section != previous:
            y += gap * 2
        previous = section
        draw.text((4, y + cell // 2 - 6), title, fill="black")
        for column, picture in enumerate(_to_pil(images, scale)):
            canvas.paste(picture, (label_width + column * (cell + gap), y))
        y += cell + gap
    canvas.save(path)


def completion_rows(truth: torch.Tensor, hole: torch.Tensor, completions: dict[str, torch.Tensor],
                    degradation: str | None = None):
    """The rows of one section: ground truth, the input (masked, or T(x) of a model's `degradation`),
    then each model's output."""
    shown = ((f"input ({degradation.partition(':')[0]})", degrade(degradation, truth)) if degradation
             else ("masked input", apply_mask(truth, hole)))
    return [("ground truth", truth), shown, *[(label, images) for label, images in completions.items()]]


def tsne_plot(groups: dict[str, torch.Tensor], path: str | Path, seed: int = 0, title: str = "") -> None:
    """t-SNE of feature groups (e.g. unlearned-forget, unlearned-retain, real-forget, real-retain) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    names = list(groups)
    features = torch.cat([groups[name].float() for name in names]).numpy()
    perplexity = float(min(30, max(2, (len(features) - 1) // 3)))
    points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    figure, axis = plt.subplots(figsize=(6, 5.5))
    start = 0
    styles = {"real": dict(marker="o", alpha=0.35), "default": dict(marker="x", alpha=0.8)}
    for index, name in enumerate(names):
        count = len(groups[name])
        style = styles["real"] if name.startswith("real") else styles["default"]
        axis.scatter(points[start:start + count, 0], points[start:start + count, 1], s=14, color=f"C{index}",
                     label=f"{name} ({count})", **style)
        start += count
    axis.set_xticks([])
    axis.set_yticks([])
    axis.legend(fontsize=8)
    axis.set_title(title or "t-SNE of image embeddings", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def control_plot(control: dict, path: str | Path) -> None:
    """The path of a controlled run (its "control" record): forget progress, retain budget used and
    forget_alpha against the step, with the target, the budget and the kept checkpoint marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path_points = control["path"]
    steps = [point["step"] for point in path_points]
    target_ratio = control["target_error"] / control["original"]["forget_error"]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = [("forget_ratio", "forget validation error ÷ original", target_ratio, "target"),
              ("retain_rise", "retain validation error rise", control["retain_budget"], "budget"),
              ("forget_alpha", "forget_alpha (strength)", None, None)]
    for axis, (key, label, line, line_label) in zip(axes, panels):
        axis.plot(steps, [point[key] for point in path_points], "o-", ms=3, color="tab:blue")
        for action, marker, legend in (("weaker", "v", "over budget: weaker"),
                                       ("back and weaker", "x", "over budget: back to the best checkpoint")):
            points = [point for point in path_points if point.get("action") == action]
            if points:
                axis.scatter([p["step"] for p in points], [p[key] for p in points], marker=marker, s=50,
                             color="tab:red", zorder=3, label=legend)
        if line is not None:
            axis.axhline(line, color="tab:green" if line_label == "target" else "tab:red", ls="--", label=line_label)
        axis.axvline(control["kept_step"], color="grey", ls=":", label=f"kept: step {control['kept_step']}")
        axis.set_xlabel("step")
        axis.set_title(label, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    axes[1].yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    figure.suptitle(control["message"].split(":")[0], fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def relearn_plot(relearn: dict, path: str | Path) -> None:
    """The relearning probe's default attacker (metrics.json "relearn"): each model's forget-test hole
    MSE against the fine-tuning step, with the "relearnt" line (RELEARNED x the original's error)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"original": "tab:grey", "unlearned": "tab:red", "retrained": "tab:green"}
    figure, axis = plt.subplots(figsize=(5.6, 3.6))
    for name, colour in colours.items():
        if relearn.get(name):
            relearnt = relearn["steps_to_relearn"].get(name)
            label = f"{name} (relearnt at step {relearnt})" if relearnt is not None else f"{name} (not relearnt)"
            axis.plot(relearn["steps"], relearn[name], "o-", ms=3, color=colour, label=label)
    if relearn.get("original_error") is not None:
        level = relearn["settings"]["relearned_within"] * relearn["original_error"]
        axis.axhline(level, color="black", ls=":", lw=1, label=f"{relearn['settings']['relearned_within']:g}x the original")
    settings = relearn["settings"]
    axis.set_xlabel(f"fine-tuning steps on {settings['train_images']} forget images (lr {settings['lr']:g})")
    axis.set_ylabel("forget-test hole MSE")
    axis.set_title("relearning probe: how fast the forgotten classes come back", fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
