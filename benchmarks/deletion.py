"""A person's deletion request, once or as a chain of requests: membership, completions, retain quality, cost.

    python benchmarks/deletion.py --family mae
    python benchmarks/deletion.py --family mae --requests 4
    python benchmarks/deletion.py --family mae --lists DIR --memorised M --reference R --calibration C
    python benchmarks/deletion.py --family mae --uncalibrated
    python benchmarks/deletion.py --family vqgan --other-holes random:0.5,random:0.25
    python benchmarks/deletion.py --family vqgan --forget-target attack
    python benchmarks/deletion.py --family mae --other-references R2,R3

A model that memorised a private set (default: the bundled one of the family and its lists,
assets/private-fashion-mnist) deletes the images of forget.txt with every default (the calibration
model given, as the samples demo gives it; --uncalibrated: without it): in one request
(--requests 1), or split into N requests in a row, each unlearning the previous output (a chain of
certificates; images deleted earlier stay out of the later retain sets). After each request: the
calibrated membership AUC of the images deleted so far (against the reference: the same fine-tune
without all of them) and of the kept private images (against before), each difference with its 95%
bootstrap interval (the same images resampled under both models), hole MSE of the deleted images
against the reference's, retain test hole MSE and FID against before, and the request's seconds.
Prints one Markdown row per request. --other-references: the same reference fine-tune with other
seeds, whose own AUCs show how far retrainings land apart (the resolution of the "within 0.05" goal);
the final deleted AUC is then read against each of them too. The attack reads the model's evaluation
task (the centre hole); --other-holes repeats the final AUCs under holes the deletion was not measured
on, since an attacker picks the hole. Each request's model, record and certificate go to a temporary
folder removed at the end; --keep DIR keeps them (the models a diagnostic reads afterwards).
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import Subset

from i2i_unlearn import UnlearnConfig, load_model, make_splits, unlearn
from i2i_unlearn.data import load_dataset, make_mask, read_forget_list, stack_images, subset_per_class
from i2i_unlearn.demo_samples import PRIVATE_LISTS, SAMPLE_STEPS, private_models
from i2i_unlearn.evaluate import Evaluator
from i2i_unlearn.metrics import hole_mse
from i2i_unlearn.metrics.membership import attack_scores, auc_difference_interval, reference_pair, roc_auc
from i2i_unlearn.models import ASSETS, DEFAULT_BUNDLED
from i2i_unlearn.report import SAME_AUC_WITHIN


@torch.no_grad()
def hole_error(network, images: Subset, seed: int, steps: int | None) -> float:
    """Mean centre-hole MSE of `network`'s completions of `images` (fixed masks and sampler noise)."""
    network.eval()
    truth = stack_images(images)
    hole = make_mask("center", len(truth), network.image_size, network.mask_cell, torch.Generator().manual_seed(seed))
    completed = network.complete(truth, hole, torch.Generator().manual_seed(seed), steps)
    return float(hole_mse(completed, truth, hole).mean())


def span(bounds: list[float] | None) -> str:
    """A 95% interval as "-0.100 to +0.050" (none for a set of one image)."""
    return f"{bounds[0]:+.3f} to {bounds[1]:+.3f}" if bounds else "none (one image)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="mae")
    parser.add_argument("--lists", default=str(PRIVATE_LISTS), help="folder of forget.txt, kept.txt, non_members.txt")
    parser.add_argument("--memorised", default=None, help="default: the family's bundled memorised model")
    parser.add_argument("--reference", default=None, help="default: its bundled reference (never had forget.txt)")
    parser.add_argument("--calibration", default=None, help="default: the family's bundled model")
    parser.add_argument("--other-references", default="",
                        help="the reference fine-tune again with other seeds (comma-separated): their AUCs beside "
                        "the reference's")
    parser.add_argument("--requests", type=int, default=1, help="split forget.txt into this many requests in a row")
    parser.add_argument("--method", default="auto")
    parser.add_argument("--forget-target", default="auto", help="as unlearn's, e.g. attack (docs/deletion.md, H9)")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="delete without the calibration model (the unseen level of a population, as before H6)")
    parser.add_argument("--other-holes", default="", help="also attack the final model under these masks, e.g. "
                        "random:0.5 (comma-separated)")
    parser.add_argument("--eval-per-class", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--keep", default=None, help="keep each request's model, record and certificate in this new "
                        "folder (default: a temporary folder, removed at the end)")
    args = parser.parse_args()
    if args.keep and Path(args.keep).exists():
        parser.error(f"--keep {args.keep} exists; name a new folder")
    memorised_path, reference_path = (args.memorised, args.reference) if args.memorised else private_models(args.family)
    calibration_path = args.calibration or ASSETS / DEFAULT_BUNDLED[args.family]
    lists = Path(args.lists)
    model, reference, calibration = (load_model(p) for p in (memorised_path, reference_path, calibration_path))
    other_references = {path: load_model(path) for path in filter(None, args.other_references.split(","))}
    steps = SAMPLE_STEPS.get(args.family)
    train = load_dataset("fashion-mnist", "train", model.image_size, model.channels)
    test = load_dataset("fashion-mnist", "test", model.image_size, model.channels)
    forget_ids = read_forget_list(lists / "forget.txt", train)
    kept = Subset(train, read_forget_list(lists / "kept.txt", train))
    outside = Subset(test, read_forget_list(lists / "non_members.txt", test))
    requests = [forget_ids[k::args.requests] for k in range(args.requests)]
    config = UnlearnConfig(method=args.method, seed=args.seed, forget_target=args.forget_target,
                           calibration=None if args.uncalibrated else str(calibration_path))
    if args.keep:
        work = Path(args.keep)
        work.mkdir(parents=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="deletion-"))
        atexit.register(shutil.rmtree, work, True)

    def splits_for(indices: list[int], name: str):
        listing = work / f"{name}.txt"
        listing.write_text("\n".join(train.ids[i] for i in indices) + "\n")
        return make_splits("fashion-mnist", model.image_size, model.channels, forget_list=str(listing), seed=args.seed)

    everything = splits_for(forget_ids, "all")
    sets = {"retain": subset_per_class(everything.retain_test, args.eval_per_class, args.seed),
            "forget": everything.forget, "kept": kept}
    evaluator = Evaluator(everything, sets, seed=args.seed, steps=steps, membership=False, progress=False)
    calibrated = {}

    def scores(network, members: Subset, name: str, task: str | None = None) -> tuple:
        """The calibrated attack's (members, non-members) scores under `network`."""
        if (name, task) not in calibrated:
            calibrated[name, task] = reference_pair(calibration, members, outside, task, seed=args.seed, steps=steps)
        return attack_scores(network, members, outside, task=task, seed=args.seed, steps=steps,
                             reference_scores=calibrated[name, task])["calibrated"]

    def attack(network, members: Subset, name: str, task: str | None = None) -> float:
        return roc_auc(*scores(network, members, name, task))

    def gap(first: tuple, second: tuple) -> list[float] | None:
        """95% interval of AUC(first) - AUC(second), two networks' `scores` of the same images."""
        return auc_difference_interval(first, second, seed=args.seed)

    before = evaluator(model)[0]
    bar = evaluator(reference)[0]
    kept_before, reference_all = scores(model, kept, "kept"), scores(reference, everything.forget, "all")
    rows, source = [], str(memorised_path)
    print("| request | images deleted | deleted AUC (reference) | kept AUC (before) | deleted MSE / reference's "
          "| retain MSE | retain FID | seconds |\n|---|---|---|---|---|---|---|---|")
    start = f"{attack(model, everything.forget, 'all'):.3f} ({roc_auc(*reference_all):.3f})"
    print(f"| before | 0 | {start} "
          f"| {roc_auc(*kept_before):.3f} | {before['forget']['hole_mse'] / bar['forget']['hole_mse']:.2f}x | "
          f"1.00x | 1.00x | - |", flush=True)
    others = []
    for path, other_reference in other_references.items():
        theirs, their_all = evaluator(other_reference)[0], scores(other_reference, everything.forget, "all")
        others.append({"path": path, "deleted_auc": roc_auc(*their_all),
                       "minus_reference_95": gap(their_all, reference_all),
                       "deleted_error_ratio": theirs["forget"]["hole_mse"] / bar["forget"]["hole_mse"],
                       "kept_auc": attack(other_reference, kept, "kept"),
                       "retain_mse": theirs["retain"]["hole_mse"] / before["retain"]["hole_mse"],
                       "retain_fid": theirs["retain"]["fid"] / before["retain"]["fid"]})
        found = others[-1]
        print(f"other reference {path}: deleted AUC {found['deleted_auc']:.3f} (minus the reference's: 95% interval "
              f"{span(found['minus_reference_95'])}); kept AUC {found['kept_auc']:.3f}; deleted MSE "
              f"{found['deleted_error_ratio']:.2f}x the reference's; retain MSE {found['retain_mse']:.2f}x, FID "
              f"{found['retain_fid']:.2f}x before", flush=True)
    deleted: list[int] = []
    for number, request in enumerate(requests, 1):
        deleted += request
        started = time.perf_counter()
        out = work / f"request-{number}"
        model, record = unlearn(model, splits_for(request, f"request-{number}"), config, out=out, source=source)
        seconds = time.perf_counter() - started
        source = str(out)
        so_far = Subset(train, sorted(deleted))
        name = f"deleted-{number}"
        metrics = evaluator(model)[0]
        mine, theirs = hole_error(model, so_far, args.seed, steps), hole_error(reference, so_far, args.seed, steps)
        deleted_now, reference_now = scores(model, so_far, name), scores(reference, so_far, name)
        kept_now = scores(model, kept, "kept")
        row = {"request": number, "deleted": len(deleted), "deleted_auc": roc_auc(*deleted_now),
               "reference_auc": roc_auc(*reference_now), "kept_auc": roc_auc(*kept_now),
               "deleted_error_ratio": mine / theirs,
               "retain_mse": metrics["retain"]["hole_mse"] / before["retain"]["hole_mse"],
               "retain_fid": metrics["retain"]["fid"] / before["retain"]["fid"], "seconds": seconds,
               "deleted_minus_reference_95": gap(deleted_now, reference_now),
               "kept_minus_before_95": gap(kept_now, kept_before),
               "outcome": record.get("control", {}).get("message")}
        rows.append(row)
        print(f"| {number} | {row['deleted']} | {row['deleted_auc']:.3f} ({row['reference_auc']:.3f}) | "
              f"{row['kept_auc']:.3f} | {row['deleted_error_ratio']:.2f}x | {row['retain_mse']:.2f}x | "
              f"{row['retain_fid']:.2f}x | {seconds:.0f} |", flush=True)
    final = evaluator(model)[0]
    print(f"after all: kept MSE {final['kept']['hole_mse'] / before['kept']['hole_mse']:.2f}x before; deleted MSE "
          f"{final['forget']['hole_mse'] / bar['forget']['hole_mse']:.2f}x the reference's; reference retain MSE "
          f"{bar['retain']['hole_mse'] / before['retain']['hole_mse']:.2f}x, "
          f"FID {bar['retain']['fid'] / before['retain']['fid']:.2f}x")
    for row in rows:
        print(f"request {row['request']}: {row['outcome']}; 95% intervals: deleted AUC minus the reference's "
              f"{span(row['deleted_minus_reference_95'])}, kept AUC minus before {span(row['kept_minus_before_95'])}")
    if others:
        levels = [rows[-1]["reference_auc"]] + [o["deleted_auc"] for o in others]
        near = sum(abs(rows[-1]["deleted_auc"] - level) <= SAME_AUC_WITHIN for level in levels)
        print(f"deleted AUC {rows[-1]['deleted_auc']:.3f}: within {SAME_AUC_WITHIN} of {near} of the {len(levels)} "
              f"references' ({min(levels):.3f}-{max(levels):.3f})")
    other = {}
    memorised = load_model(memorised_path) if args.other_holes else None  # `unlearn` trained `model` in place
    for task in filter(None, args.other_holes.split(",")):
        other[task] = {"deleted_auc": attack(model, so_far, "deleted", task),
                       "reference_auc": attack(reference, so_far, "deleted", task),
                       "kept_auc": attack(model, kept, "kept", task),
                       "kept_auc_before": attack(memorised, kept, "kept", task)}
        print(f"under {task}: deleted AUC {other[task]['deleted_auc']:.3f} (reference "
              f"{other[task]['reference_auc']:.3f}), kept AUC {other[task]['kept_auc']:.3f} (before "
              f"{other[task]['kept_auc_before']:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "before": before, "reference": bar, "final": final,
                                               "other_holes": other, "other_references": others,
                                               "args": vars(args)}, indent=1))


if __name__ == "__main__":
    main()
