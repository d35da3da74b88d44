"""`i2i-unlearn report`: run folders as one self-contained HTML page.

Reads what `demo`, `evaluate`, `compare` and `sweep` wrote (metrics.json, compare.json, sweep.json)
and renders their metric tables, with every top-level PNG of each folder embedded as a data URI:
one file that opens anywhere, offline, with no scripts and nothing fetched from outside.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
from html import escape
from pathlib import Path

from .errors import UserError
from .records import missing_parents, now

RECORDS = ("compare.json", "sweep.json", "relearn.json", "metrics.json", "unlearn_record.json")
KNOWN_METRICS = ("hole_mse", "mse", "psnr", "ssim", "fid", "kid", "kid_std", "is", "cosine", "class_accuracy",
                 "images")
LABELS = {"hole_mse": "hole MSE", "mse": "MSE (whole image)", "psnr": "PSNR", "fid": "FID", "kid": "KID", "is": "IS", "ssim": "SSIM",
          "kid_std": "KID std", "class_accuracy": "class accuracy"}
WIDE_TABLE_SKIPS = ("images", "kid_std")  # kept in the JSON; they crowd the one-row-per-model tables
KNOWN_IMAGES = ("samples.png", "relearn.png", "control.png", "tradeoff.png", "tsne.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1f24; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; margin-top: 2.2em; }
h3 { margin: 1.4em 0 0.4em; }
.muted { color: #57606a; }
.kind { background: #ddf4ff; color: #0969da; border-radius: 1em; padding: 0.1em 0.6em; font-size: 0.7em;
        vertical-align: middle; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.15em 1em; margin: 0.6em 0; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 0.25em 0.6em; }
th { background: #f6f8fa; font-weight: 600; }
td.num { text-align: right; }
td.name, th.name { text-align: left; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: 0.9em; }
nav ul { padding-left: 1.2em; }
.verdict table { font-size: 1.05em; }
details { margin: 1em 0; }
summary { cursor: pointer; color: #0969da; }
"""


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(value) -> str:
    """A number to 4 significant digits (integers whole), '–' for missing; escaped text otherwise."""
    if value is None:
        return "–"
    if _is_number(value):
        if isinstance(value, int):
            return str(value)
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return escape(str(value))


def _label(metric: str) -> str:
    return escape(LABELS.get(metric, metric))


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def metric_names(*metric_sets: dict) -> list[str]:
    """The numeric keys of the given metric dicts: known metrics first (in their order), then the rest sorted."""
    names = {key for metrics in metric_sets for key, value in _dict(metrics).items() if _is_number(value)}
    return [m for m in KNOWN_METRICS if m in names] + sorted(names - set(KNOWN_METRICS))


def _set_names(*groups: dict) -> list[str]:
    """The image sets (retain, forget, then any others) present in any of `groups` ({set: metrics})."""
    seen = [name for group in groups for name, metrics in _dict(group).items() if isinstance(metrics, dict)]
    return [s for s in ("retain", "forget") if s in seen] + [s for s in dict.fromkeys(seen)
                                                              if s not in ("retain", "forget")]


def _table(head: list[str], rows: list[list[str]], thead: str | None = None) -> str:
    """An HTML table of HTML cells (escaped already); the first column names the row."""
    thead = thead or "<tr>" + "".join(f'<th class="name">{h}</th>' if i == 0 else f"<th>{h}</th>"
                                      for i, h in enumerate(head)) + "</tr>"
    body = "".join("<tr>" + "".join(f'<td class="name">{c}</td>' if i == 0 else f'<td class="num">{c}</td>'
                                    for i, c in enumerate(row)) + "</tr>\n" for row in rows)
    return f'<div class="scroll"><table>\n<thead>{thead}</thead>\n<tbody>\n{body}</tbody>\n</table></div>\n'


def _wide_table(first: str, rows: dict[str, dict], extra: dict[str, dict] | None = None) -> str:
    """Rows of {set: metrics} as one table, columns grouped by set (like the paper's Table 1).

    `extra` adds columns after the metrics: {row: {column: value}}.
    """
    extra = extra or {}
    sets = _set_names(*rows.values())
    columns = [(s, m) for s in sets for m in metric_names(*(_dict(row.get(s)) for row in rows.values()))
               if m not in WIDE_TABLE_SKIPS]
    extra_columns = list(dict.fromkeys(column for values in extra.values() for column in values))
    thead = (f'<tr><th class="name" rowspan="2">{escape(first)}</th>'
             + "".join(f'<th colspan="{sum(c[0] == s for c in columns)}">{escape(s)}</th>' for s in sets)
             + "".join(f'<th rowspan="2">{escape(column)}</th>' for column in extra_columns)
             + "</tr><tr>" + "".join(f"<th>{_label(m)}</th>" for _, m in columns) + "</tr>")
    body = [[escape(name)] + [fmt(_dict(row.get(s)).get(m)) for s, m in columns]
            + [fmt(extra.get(name, {}).get(column)) for column in extra_columns] for name, row in rows.items()]
    return _table([], body, thead)


def _facts(record: dict) -> str:
    """The run's header: what was forgotten, how, on what, with which versions, and when."""
    config, data = _dict(record.get("config")), _dict(record.get("data"))
    unlearn = _dict(record.get("unlearn_config")) or _dict(config.get("unlearn"))

    def listed(value):
        return ", ".join(map(str, value)) if isinstance(value, list) else value

    facts = [("model", record.get("model") or config.get("model")),
             ("model family", record.get("family")),
             ("retrained model", config.get("retrained")),
             ("method", record.get("method") or listed(config.get("methods")) or unlearn.get("method")),
             ("forget classes", listed(record.get("forget_classes") or data.get("forget_classes"))),
             ("forget list", data.get("forget_list")),
             ("dataset", data.get("dataset")),
             ("task", record.get("task") or config.get("task")),
             ("sampling steps", _dict(record.get("evaluation")).get("sampling_steps") or config.get("sampling_steps")),
             ("feature extractor", record.get("features")),
             ("unlearn steps", unlearn.get("steps")),
             ("unlearning took", f"{fmt(record['unlearn_seconds'])} s" if _is_number(record.get("unlearn_seconds"))
              else None),
             ("run took", f"{fmt(record['seconds'])} s" if _is_number(record.get("seconds")) else None),
             ("started", record.get("started")),
             ("finished", record.get("finished")),
             ("versions", " · ".join(f"{k} {v}" for k, v in _dict(record.get("versions")).items()))]
    items = "".join(f"<dt>{escape(name)}</dt><dd>{fmt(value) if _is_number(value) else escape(str(value))}</dd>"
                    for name, value in facts if value not in (None, "", []))
    return f'<dl class="facts">{items}</dl>' if items else ""


def _ratio(after, before) -> str:
    if _is_number(after) and _is_number(before) and before:
        return f"{fmt(after / before)}×"
    return "–"


def _demo(record: dict) -> str:
    columns = {name: record[name] for name in ("before", "after", "retrained", "reference")
               if isinstance(record.get(name), dict)}
    parts = []
    for set_name in _set_names(*columns.values()):
        sets = {name: _dict(group.get(set_name)) for name, group in columns.items()}
        rows = [[_label(m)] + [fmt(values.get(m)) for values in sets.values()]
                + [_ratio(sets.get("after", {}).get(m), sets.get("before", {}).get(m)) if m != "images" else "–"]
                for m in metric_names(*sets.values())]
        parts.append(f"<h3>{escape(set_name)} set</h3>"
                     + _table(["metric", *map(escape, sets), "after ÷ before"], rows))
    return "".join(parts) + _membership(record) + _deletion_attacks(record) + _relearning(record) + _control(record)


def _deletion_attacks(record: dict) -> str:
    """The membership attacks of a sample-level deletion: per private set and model, both attacks."""
    attacks = _dict(record.get("membership_attacks"))
    rows = []
    for model, sets in attacks.items():
        for name, result in _dict(sets).items():
            result = _dict(result)
            rows.append([escape(f"{name}, {model}")]
                        + [cell for attack in ("calibrated", "loss") for cell in _auc_cells(_dict(result.get(attack)))]
                        + [fmt(result.get("members")), fmt(result.get("non_members"))])
    if not rows:
        return ""
    return ("<h3>membership attacks on the private images</h3><p class=\"muted\">calibrated: each image's loss "
            "against its loss under a model that never memorised it; loss: the raw loss. AUC 0.5 = cannot tell the "
            "images from held-out ones</p>"
            + _table(["images, model", "calibrated AUC (95% interval)", "calibrated TPR at 1% FPR",
                      "loss AUC (95% interval)",
                      "loss TPR at 1% FPR", "members", "non-members"], rows))


def _bounds(value) -> list | None:
    """A recorded [low, high] interval, or None."""
    return value if isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) else None


def _auc_cells(result: dict) -> list[str]:
    """An attack's AUC with its 95% interval when recorded, and its TPR at 1% FPR."""
    bounds = _bounds(result.get("auc_95"))
    return [fmt(result.get("auc")) + (escape(f" ({fmt(bounds[0])}–{fmt(bounds[1])})") if bounds else ""),
            fmt(result.get("tpr_at_1pct_fpr"))]


def _relearning(record: dict) -> str:
    """The relearning probe of a demo (its "relearn" record): each attacker's steps to relearn."""
    relearn = _dict(record.get("relearn"))
    if not relearn:
        return ""
    attackers = {"default": relearn, **({"strong": _dict(relearn["strong"])} if "strong" in relearn else {})}
    models = list(dict.fromkeys(m for a in attackers.values() for m in _dict(a.get("steps_to_relearn"))))
    rows = []
    for name, result in attackers.items():
        settings = _dict(result.get("settings"))
        found = _dict(result.get("steps_to_relearn"))
        rows.append([escape(name), escape(f"lr {settings.get('lr')}, {settings.get('steps')} steps")]
                    + [fmt(found[m]) if found.get(m) is not None else "not within the probe" for m in models])
    return ("<h3>relearning probe</h3><p class=\"muted\">steps of fine-tuning on a few forget training images "
            "until the forget-test hole MSE is within "
            f"{fmt(_dict(relearn.get('settings')).get('relearned_within'))}x the original model's; an unlearned model "
            "that relearns much sooner than the retrained one still holds what it forgot (curves: relearn.png)</p>"
            + _table(["attacker", "settings", *map(escape, models)], rows))


def _action(point: dict) -> str:
    action = escape(str(point.get("action", "")))
    return f"{action} (back to step {fmt(point['went_back_to_step'])})" if "went_back_to_step" in point else action


def _control(record: dict) -> str:
    """A controlled run's outcome and the checks along its path (plotted in control.png)."""
    control = _dict(record.get("control"))
    if not control:
        return ""
    points = [_dict(point) for point in control.get("path", []) if isinstance(point, dict)]
    rows = [[fmt(p.get("step")), fmt(p.get("forget_alpha")), fmt(p.get("forget_ratio")),
             f"{fmt(100 * p['retain_rise'])}%" if _is_number(p.get("retain_rise")) else "–",
             fmt(p.get("budget_used")), fmt(p.get("forget_progress")),
             _action(p)] for p in points]
    return (f"<h3>retain budget and forget target</h3><p>{escape(str(control.get('message')))}</p>"
            f"<p class=\"muted\">budget: {fmt(control.get('retain_budget'))} relative rise of the retain "
            f"validation error; target: {escape(str(control.get('target_source')))}; validation images "
            f"{escape(json.dumps(control.get('validation_images')))}, checked every "
            f"{fmt(control.get('check_every'))} steps</p>"
            + _table(["step", "forget_alpha", "forget ÷ original", "retain rise", "budget used", "progress", "then"],
                     rows))


def _unlearn(record: dict) -> str:
    return _control(record)


def _membership(record: dict) -> str:
    attack = {k: v for k, v in _dict(record.get("membership_inference")).items() if _is_number(v)}
    if not attack:
        return ""
    order = [k for k in ("original", "unlearned", "retrained") if k in attack] + sorted(
        set(attack) - {"original", "unlearned", "retrained"})
    return ("<h3>membership inference</h3>"
            '<p class="muted">ROC AUC of a loss attack telling forget training images from held-out images '
            "of the same classes (0.5 = cannot tell)</p>"
            + _table(["model", "AUC"], [[escape(k), fmt(attack[k])] for k in order]))


def _evaluate(record: dict) -> str:
    metrics = _dict(record.get("metrics"))
    return "".join(f"<h3>{escape(s)} set</h3>"
                   + _table(["metric", "value"], [[_label(m), fmt(metrics[s].get(m))]
                                                   for m in metric_names(metrics[s])])
                   for s in _set_names(metrics)) + _membership(record)


def _compare(record: dict) -> str:
    results = {name: _dict(row) for name, row in _dict(record.get("results")).items()}
    distances = list(dict.fromkeys(k for row in results.values() for k in _dict(row.get("to_retrained"))))
    extra = {name: {**{f"forget: {LABELS.get(k, k)} to retrained": _dict(row.get("to_retrained")).get(k)
                       for k in distances}, "membership AUC": row.get("membership_auc"),
                    "seconds": row.get("seconds")}
             for name, row in results.items()}
    return _wide_table("model", {name: _dict(row.get("metrics")) for name, row in results.items()}, extra)


def _sweep(record: dict) -> str:
    points = {alpha: _dict(sets) for alpha, sets in _dict(record.get("points")).items()}

    def order(alpha: str):
        try:
            return (0, float(alpha), alpha)
        except ValueError:
            return (1, 0.0, alpha)

    return _wide_table("forget_alpha", {alpha: points[alpha] for alpha in sorted(points, key=order)})


def _relearn(record: dict) -> str:
    curves = {name: [point for point in curve if isinstance(point, dict)]
              for name, curve in _dict(record.get("curves")).items() if isinstance(curve, list)}
    steps = sorted({point.get("step") for curve in curves.values() for point in curve if _is_number(point.get("step"))})
    rows = []
    for name, curve in curves.items():
        by_step = {point.get("step"): point.get("forget_hole_mse") for point in curve}
        recovered = _dict(_dict(record.get("summary")).get(name)).get("recovered")
        rows.append([escape(name)] + [fmt(by_step.get(step)) for step in steps] + [fmt(recovered)])
    return ('<h3>relearning probe</h3><p class="muted">forget-test hole MSE while each model is fine-tuned on the '
            "same few forget images; an unlearned model that recovers much faster than the retrained one still "
            "holds what it forgot</p>"
            + _table(["model", *[f"step {step}" for step in steps], "recovered"], rows))


RENDERERS = {"unlearn": _unlearn, "relearn": _relearn, "demo": _demo, "evaluate": _evaluate, "compare": _compare, "sweep": _sweep}


def load_run(folder: str | Path) -> tuple[str, str, dict]:
    """(kind, record file name, record) of a run folder; UserError when it is not one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"run folder {folder} does not exist; pass folders written by demo, evaluate, compare "
                        "or sweep")
    name = next((n for n in RECORDS if (folder / n).is_file()), None)
    if name is None:
        raise UserError(f"{folder} holds none of {', '.join(RECORDS)}; pass a folder written by demo, evaluate, "
                        "compare or sweep")
    try:
        record = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = f"line {exc.lineno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise UserError(f"cannot read {folder / name} ({reason}); re-run the command that wrote it") from None
    if not isinstance(record, dict):
        raise UserError(f"{folder / name} is not a JSON object; re-run the command that wrote it")
    if name == "unlearn_record.json":
        kind = "unlearn"
    elif name != "metrics.json":
        kind = name.removesuffix(".json")
    elif record.get("kind") == "evaluate" or ("metrics" in record and "before" not in record):
        kind = "evaluate"
    elif "before" in record or "after" in record:
        kind = "demo"
    else:
        raise UserError(f"{folder / name} has neither 'metrics' (evaluate) nor 'before'/'after' (demo); "
                        "pass a folder written by demo, evaluate, compare or sweep")
    return kind, name, record


def _images(folder: Path, first: tuple[str, ...] = ()) -> tuple[str, str]:
    """Every top-level PNG of `folder` (and the controller's plot of a demo's model/) as captioned figures
    with data URIs, known plots first: (those named in `first`, the others)."""
    def order(path: Path):
        return (KNOWN_IMAGES.index(path.name) if path.name in KNOWN_IMAGES else len(KNOWN_IMAGES), path.name)

    files = sorted((p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file()), key=order)
    if (folder / "model" / "control.png").is_file() and not (folder / "control.png").exists():
        files.append(folder / "model" / "control.png")
    shown = [p for p in files if p.name in first]
    return _figures(shown), _figures([p for p in files if p not in shown])


def _figures(files: list[Path]) -> str:
    figures = []
    for path in files:
        caption = escape(path.name)
        try:
            data = path.read_bytes()
        except OSError as exc:
            figures.append(f"<p class=\"muted\">{caption}: could not be read ({escape(str(exc))})</p>")
            continue
        if not data.startswith(PNG_SIGNATURE):
            figures.append(f'<p class="muted">{caption}: not a PNG image, left out</p>')
            continue
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        figures.append(f'<figure><img src="{uri}" alt="{caption}"><figcaption>{caption}</figcaption></figure>')
    return "\n".join(figures)


def _certificate(folder: Path) -> str:
    """The deletion certificate of the run's unlearned model, when there is one (demo: model/)."""
    path = next((p for p in (folder / "certificate.json", folder / "model" / "certificate.json") if p.is_file()), None)
    if path is None:
        return ""
    try:
        certificate = _dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f'<p class="muted">{escape(str(path))}: not readable, left out</p>'
    data = _dict(certificate.get("data"))
    forget, retain = _dict(data.get("forget")), _dict(data.get("retain"))
    classes = ", ".join(f"{name} ({count})" for name, count in _dict(forget.get("classes")).items()) or "–"
    original = _dict(certificate.get("original_checkpoint"))
    rows = [["method, seed", f"{escape(str(certificate.get('method')))}, {escape(str(certificate.get('seed')))}"],
            ["forget images", f"{fmt(forget.get('count'))}: {escape(classes)}"],
            ["forget set SHA-256", escape(str(forget.get("sha256")))],
            ["retain images, SHA-256", f"{fmt(retain.get('count'))}, {escape(str(retain.get('sha256')))}"],
            ["original checkpoint", f"{escape(str(original.get('path')))}<br>{escape(str(original.get('sha256')))}"],
            ["unlearned checkpoint SHA-256", escape(str(_dict(certificate.get("unlearned_checkpoint")).get("sha256")))],
            ["earlier deletion (its certificate's digest)",
             escape(str(certificate.get("parent_certificate") or "none"))],
            ["certificate digest, signature", f"{escape(str(certificate.get('digest') or 'none (format 1)'))}, "
                                             + ("Ed25519 key " + escape(str(_dict(certificate['signature'])
                                                                            .get('key_sha256')))[:16] + "..."
                                                if certificate.get("signature") else "not signed")],
            ["started, finished", f"{escape(str(certificate.get('started')))}, "
                                  f"{escape(str(certificate.get('finished')))}"]]
    return (f"<h3>deletion certificate</h3><p class=\"muted\">{escape(str(path))}; check it with "
            f"<code>i2i-unlearn verify {escape(str(path.parent))}</code></p>" + _table(["", ""], rows))


# The verdict's bars (issue goals of the project): the rest is kept when its hole MSE and FID stay within
# KEPT_WITHIN of the original's; it forgot when its forget hole MSE is at least the retrained model's
# (without one: at least FORGOT_WITHOUT_REFERENCE x the original's, the controller's floor).
KEPT_WITHIN = 1.1
FORGOT_WITHOUT_REFERENCE = 1.3


def _value(sets: dict, set_name: str, metric: str):
    value = _dict(_dict(sets).get(set_name)).get(metric)
    return value if _is_number(value) else None


def _judge(model: dict, original: dict, retrained: dict | None, relearn: dict | None) -> list[str]:
    """One verdict row of a model against the original (and the retrained model): forgot? kept? relearnt?"""
    forget, forget_before = _value(model, "forget", "hole_mse"), _value(original, "forget", "hole_mse")
    reference = _value(retrained, "forget", "hole_mse") if retrained else None
    if forget is None or forget_before is None:
        forgot = "–"
    elif reference is not None:
        forgot = (f"{'yes' if forget >= reference else 'not as far as retraining'}: forget hole MSE "
                  f"{fmt(forget / reference)}× the retrained model's")
    else:
        forgot = (f"{'yes' if forget >= FORGOT_WITHOUT_REFERENCE * forget_before else 'little'}: forget hole MSE "
                  f"{fmt(forget / forget_before)}× the original's (no retrained model to compare with)")
    ratios = {metric: (_value(model, "retain", metric), _value(original, "retain", metric))
              for metric in ("hole_mse", "fid")}
    ratios = {metric: after / before for metric, (after, before) in ratios.items()
              if after is not None and before}
    kept = "–" if not ratios else (
        f"{'yes' if all(r <= KEPT_WITHIN for r in ratios.values()) else 'no'}: retain "
        + ", ".join(f"{_label(metric)} {fmt(r)}×" for metric, r in ratios.items()) + " the original's")

    def steps(value) -> str:
        return "not within the probe" if value is None else f"{fmt(value)} steps"

    relearnt = "; ".join(f"{escape(name)}: {steps(found)}" + (f" (retrained: {steps(theirs)})"
                                                              if retrained is not None else "")
                         for name, (found, theirs) in _dict(relearn).items()) or "–"
    return [forgot, kept, relearnt]


SAME_AUC_WITHIN = 0.05  # a sample-level deletion: AUC this close to the reference's (or to before, for kept images)
SAME_ERROR_WITHIN = 0.10  # and forgotten images completed within 10% of the reference's error


def _interval(bounds, what: str) -> str:
    """'; after − reference: 95% interval a to b' for a recorded [low, high], else nothing."""
    if not _bounds(bounds):
        return ""
    return escape(f"; {what}: 95% interval {bounds[0]:+.3f} to {bounds[1]:+.3f}")


def _deletion_verdict(record: dict) -> str:
    """The checks of a sample-level deletion (demo --scenario samples), each with its goal."""
    auc = _dict(record.get("membership"))
    forgotten, kept = _dict(auc.get("forgotten")), _dict(auc.get("kept"))
    rows = []

    def check(name: str, measured: str, met: bool | None) -> None:
        rows.append([escape(name), measured, "–" if met is None else ("yes" if met else "no")])

    if all(_is_number(forgotten.get(k)) for k in ("after", "reference")):
        check("forgotten images: membership AUC", f"{fmt(forgotten['after'])} after, {fmt(forgotten['reference'])} "
              f"reference ({fmt(forgotten.get('before'))} before)"
              + _interval(forgotten.get("after_minus_reference_95"), "after − reference"),
              abs(forgotten["after"] - forgotten["reference"]) <= SAME_AUC_WITHIN)
    error, reference = _value(record.get("after"), "forget", "hole_mse"), _value(record.get("reference"), "forget",
                                                                                  "hole_mse")
    if error is not None and reference:
        check("forgotten images: completion error", f"{fmt(error / reference)}× the reference's",
              abs(error / reference - 1) <= SAME_ERROR_WITHIN)
    if all(_is_number(kept.get(k)) for k in ("after", "before")):
        check("kept private images: membership AUC", f"{fmt(kept['after'])} after, {fmt(kept['before'])} before"
              + _interval(kept.get("after_minus_before_95"), "after − before"),
              abs(kept["after"] - kept["before"]) <= SAME_AUC_WITHIN)
    for metric in ("hole_mse", "fid"):
        after, before = _value(record.get("after"), "retain", metric), _value(record.get("before"), "retain", metric)
        if after is not None and before:
            check(f"retain test images: {_label(metric)}", f"{fmt(after / before)}× before",
                  after / before <= KEPT_WITHIN)
    if not rows:
        return ""
    return ('<div class="verdict"><h3>verdict</h3>'
            + _table(["check", "measured", f"goal met? (AUC within {fmt(SAME_AUC_WITHIN)}, error within "
                      f"{fmt(100 * SAME_ERROR_WITHIN)}%, retain within {fmt(KEPT_WITHIN)}×)"], rows) + "</div>")


def _verdict(kind: str, record: dict) -> str:
    """What a user came for, first: did each unlearned model forget, did it keep the rest, does it relearn."""
    rows = []
    if kind == "demo" and record.get("scenario") == "samples":
        return _deletion_verdict(record)
    if kind == "demo" and isinstance(record.get("after"), dict) and isinstance(record.get("before"), dict):
        relearn = _dict(record.get("relearn"))
        attackers = {"default": relearn, "strong": _dict(relearn.get("strong"))} if relearn else {}
        found = {name: (_dict(result.get("steps_to_relearn")).get("unlearned"),
                        _dict(result.get("steps_to_relearn")).get("retrained"))
                 for name, result in attackers.items() if result}
        rows.append([escape(str(record.get("method", "unlearned")))]
                    + _judge(record["after"], record["before"], _dict(record.get("retrained")) or None, found))
    elif kind == "compare":
        results = {name: _dict(row) for name, row in _dict(record.get("results")).items()}
        original = _dict(results.get("original", {}).get("metrics"))
        retrained = _dict(results.get("retrained", {}).get("metrics")) or None
        for name, row in results.items():
            if name in ("original", "retrained"):
                continue
            reference = _dict(results.get("retrained", {}).get("steps_to_relearn"))
            found = {attacker: (steps, reference.get(attacker))
                     for attacker, steps in _dict(row.get("steps_to_relearn")).items()}
            rows.append([escape(name)] + _judge(_dict(row.get("metrics")), original, retrained, found))
    if not rows:
        return ""
    return ('<div class="verdict"><h3>verdict</h3>'
            + _table(["model", "forgot?", f"kept the rest? (within {fmt(KEPT_WITHIN)}×)", "relearnt by a fine-tune"],
                     rows) + "</div>")


def _section(index: int, folder: Path, kind: str, name: str, record: dict) -> str:
    """A run: the verdict and the samples first; its settings, tables, certificate and other plots folded below."""
    title = escape(folder.resolve().name or str(folder))
    first, rest = _images(folder, first=("samples.png", "control.png"))
    return (f'<section id="run-{index}">\n<h2>{title} <span class="kind">{escape(kind)}</span></h2>\n'
            f'<p class="muted">{escape(str(folder))}/{escape(name)}</p>\n{_verdict(kind, record)}\n{first}\n'
            f"<details><summary>settings, every metric, the certificate and the other plots</summary>\n"
            f"{_facts(record)}\n{RENDERERS[kind](record)}\n{_certificate(folder)}\n{rest}\n</details>\n"
            f"</section>\n")


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write one self-contained HTML page for `run_dirs` to `out` (a new file) and return its path."""
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; pass a new --out path (nothing was overwritten)")
    if not run_dirs:
        raise UserError("no run folders given; pass folders written by demo, evaluate, compare or sweep")
    runs = [(Path(folder), *load_run(folder)) for folder in run_dirs]
    sections = "".join(_section(i, *run) for i, run in enumerate(runs, 1))
    contents = "".join(f'<li><a href="#run-{i}">{escape(str(folder))}</a> ({escape(kind)})</li>'
                       for i, (folder, kind, _, _) in enumerate(runs, 1))
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>i2i-unlearn report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f'<h1>i2i-unlearn report</h1>\n<p class="muted">written {escape(now())}</p>\n'
            f"<nav><ul>{contents}</ul></nav>\n{sections}</body>\n</html>\n")
    parent, missing = missing_parents(out)
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: {parent} is not a folder; pass a writable --out path")
    created, opened = [], False  # what was made for `out`, removed again if it cannot be written
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        with open(out, "x", encoding="utf-8") as file:
            opened = True
            file.write(page)
    except FileExistsError:
        raise UserError(f"{out} already exists; pass a new --out path (nothing was overwritten)") from None
    except OSError as exc:
        with contextlib.suppress(OSError):  # the error to report is the first one
            if opened:
                out.unlink(missing_ok=True)
            for folder in reversed(created):
                folder.rmdir()
        raise UserError(f"cannot write {out} ({exc.strerror}); pass a writable --out path") from None
    return out
