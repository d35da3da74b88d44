"""`i2i-unlearn demo --scenario samples`: a person asks for their photos to be deleted.

The bundled model of a family was fine-tuned until it memorised 64 private training images
(`memorise.py`; one customer's photos, each seen hundreds of times); a twin had the same fine-tune
without the 32 to delete (the honest reference: what the model would be had it never had them).
The demo deletes those 32 with every default (a forget list: the controlled run aims at the error
of images the model never saw), and checks the deletion with the calibrated membership attack
(each image's loss against its loss under the bundled model, which never memorised it):

- the forgotten images: no more recognisable as members than under the reference, and completed
  about as well as the reference completes them (forgotten, not turned to noise);
- the 32 kept private images (other people's): as recognisable as before;
- retain test images: completed as well as before.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from torch.utils.data import Subset

from .audit import add_metrics
from .data import make_splits, read_forget_list
from .errors import UserError
from .evaluate import Evaluator, eval_sets
from .metrics.membership import attack_scores, auc_difference_interval, reference_pair, summarise_attacks
from .models import ASSETS, DEFAULT_BUNDLED, load_model
from .records import invocation_field, main_process, now, prepare_out_dir, versions, write_json
from .report import write_report
from .unlearn import UnlearnConfig, load_calibration, unlearn
from .viz import completion_rows, control_plot, sample_grid

PRIVATE_LISTS = ASSETS / "private-fashion-mnist"  # private.txt (64), forget.txt and kept.txt (32 each), non_members.txt
SAMPLE_STEPS = {"diffusion": 25}  # DDIM steps of the diffusion family's completions, as in the class demo


def private_models(family: str) -> tuple[Path, Path]:
    """The bundled memorised model of `family` and its reference (the same fine-tune without the 32 deleted)."""
    base = DEFAULT_BUNDLED[family]
    memorised, reference = ASSETS / f"{base}-private", ASSETS / f"{base}-private-reference"
    if not (memorised / "config.json").is_file() or not (reference / "config.json").is_file():
        raise UserError(f"the {family} family has no bundled memorised model yet ({memorised.name}); "
                        f"demo --scenario samples takes --model {' or '.join(available_families())}")
    return memorised, reference


def available_families() -> list[str]:
    return [family for family, base in DEFAULT_BUNDLED.items()
            if (ASSETS / f"{base}-private-reference" / "config.json").is_file()]


def _scores(model, sets: dict, outside, reference_scores: dict, task: str, seed: int, steps) -> dict:
    """Both attacks' scores of the forgotten and of the kept private images, against the same non-members."""
    return {name: attack_scores(model, members, outside, task=task, seed=seed, steps=steps,
                                reference_scores=reference_scores[name]) for name, members in sets.items()}


def run_samples_demo(out: str | Path = "runs/demo-samples", family: str = "mae", eval_per_class: int = 50,
                     config: UnlearnConfig | None = None, task: str | None = None, cpu: bool = False,
                     features: str = "efficientnet-lite0", classifier: str | None = "auto",
                     steps: int | None = None, sign_key=None) -> dict:
    """Delete 32 of the 64 images the bundled memorised model of `family` knows; write metrics.json,
    samples.png and report.html to `out` (a new folder)."""
    if family not in DEFAULT_BUNDLED:
        raise UserError(f"no bundled {family!r} model; demo --model takes {', '.join(DEFAULT_BUNDLED)}")
    memorised_path, reference_path = private_models(family)
    config = config or UnlearnConfig()
    base_path = ASSETS / DEFAULT_BUNDLED[family]  # never saw the private images: the attack's calibration model
    config = replace(config, calibration=config.calibration or str(base_path))  # and the deletion's
    model, reference, base = (load_model(p) for p in (memorised_path, reference_path, base_path))
    load_calibration(config.calibration, model)  # a bad --calibration fails before the folder is made
    steps = SAMPLE_STEPS.get(family) if steps is None else steps
    model.check_steps(steps)
    task = task or model.default_task
    model.check_task(task)
    forget_list = PRIVATE_LISTS / "forget.txt"
    splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_list=str(forget_list),
                         seed=config.seed)
    train, test = splits.forget.dataset, splits.retain_test.dataset
    kept = Subset(train, read_forget_list(PRIVATE_LISTS / "kept.txt", train))
    outside = Subset(test, read_forget_list(PRIVATE_LISTS / "non_members.txt", test))
    private = {"forgotten": splits.forget, "kept": kept}
    sets = {**eval_sets(splits, eval_per_class, config.seed), "kept": kept}  # as `verify --evaluate` rebuilds them
    evaluator = Evaluator(splits, sets, task, features, classifier, config.seed, steps, membership=False)
    folder = prepare_out_dir(out)
    main = main_process()

    def say(*text):
        if main:
            print(*text)

    say(f"calibrating the membership attack on the bundled {family} model (it never memorised the private images) ...")
    calibration = {name: reference_pair(base, members, outside, task, config.seed, steps)
                   for name, members in private.items()}
    columns, completions, scores = {}, {}, {}

    def measure(name: str, network, label: str):
        say(f"evaluating {label} on {len(sets['retain'])} retain test images and the {len(splits.forget)} + "
            f"{len(kept)} private images ...")
        columns[name], completions[name] = evaluator(network, keep_outputs=True)[:2]
        scores[name] = _scores(network, private, outside, calibration, task, config.seed, steps)

    measure("before", model, "the memorised model")
    say(f"deleting {len(splits.forget)} images (a forget list) ...")
    model, record = unlearn(model, splits, config, out=folder / "model", cpu=cpu, source=str(memorised_path),
                            sign_key=sign_key)
    measure("after", model, "the model after the deletion")
    measure("reference", reference, "the reference (the fine-tune without the deleted images)")

    attacks = {name: {group: summarise_attacks(pair) for group, pair in model_scores.items()}
               for name, model_scores in scores.items()}
    membership = {"forgotten": {name: attacks[name]["forgotten"]["calibrated"]["auc"]
                                for name in ("before", "after", "reference")},
                  "kept": {name: attacks[name]["kept"]["calibrated"]["auc"] for name in ("before", "after")}}
    # the goals compare two models on the same images: the interval of the difference, images resampled together
    membership["forgotten"]["after_minus_reference_95"] = auc_difference_interval(
        scores["after"]["forgotten"]["calibrated"], scores["reference"]["forgotten"]["calibrated"], seed=config.seed)
    membership["kept"]["after_minus_before_95"] = auc_difference_interval(
        scores["after"]["kept"]["calibrated"], scores["before"]["kept"]["calibrated"], seed=config.seed)
    metrics = {**invocation_field(), "scenario": "samples", "model": str(memorised_path), "family": model.family,
               "reference_model": str(reference_path), "calibration_model": str(ASSETS / DEFAULT_BUNDLED[family]),
               "method": record["config"]["method"], "task": task, "features": evaluator.extractor.name,
               "unlearn_seconds": record["seconds"],
               "before": columns["before"], "after": columns["after"], "reference": columns["reference"],
               "membership": membership, "membership_attacks": attacks,
               "private_lists": {name: str(PRIVATE_LISTS / f"{name}.txt")
                                 for name in ("private", "forget", "kept", "non_members")},
               "evaluation": evaluator.describe(), "data": record["data"], "unlearn_config": record["config"],
               "control": record.get("control"), "versions": versions(), "finished": now(),
               "checkpoint": str(folder / "model")}
    if not main:
        return metrics
    write_json(folder / "metrics.json", metrics)
    recomputable = ("retain", "forget")  # the sets `verify --evaluate` rebuilds from the request
    add_metrics(folder / "model", {name: {s: columns[name][s] for s in recomputable} for name in ("before", "after")},
                {**evaluator.describe(), "features": features, "classifier": classifier,
                 "eval_per_class": eval_per_class}, key=sign_key,
                membership={"attack": "calibrated against " + metrics["calibration_model"],
                            **{name: {"before": attacks["before"][name], "after": attacks["after"][name]}
                               for name in private}})
    shown = 8
    sample_grid([(name, completion_rows(completions["before"][name]["truth"][:shown],
                                        completions["before"][name]["hole"][:shown],
                                        {label: completions[label][name]["completed"][:shown]
                                         for label in ("before", "after", "reference")}, model.degradation))
                 for name in ("forget", "kept", "retain")], folder / "samples.png")
    if record.get("control"):
        control_plot(record["control"], folder / "control.png")
    report = write_report([folder], folder / "report.html")
    print(describe_deletion(metrics))
    print(f"the deletion took {record['seconds']:.0f} s; wrote {folder}/metrics.json, samples.png and {report.name}")
    return metrics


def describe_deletion(metrics: dict) -> str:
    """The demo's summary: the attack on each private set, and the completion errors, per model."""
    m = metrics["membership"]
    lines = ["calibrated membership AUC (0.5: cannot tell them from images never trained on):",
             f"  forgotten images: before {m['forgotten']['before']:.3f}, after {m['forgotten']['after']:.3f}, "
             f"reference {m['forgotten']['reference']:.3f}",
             f"  kept private images: before {m['kept']['before']:.3f}, after {m['kept']['after']:.3f}",
             "hole MSE (forgotten / kept private / retain test):"]
    for name in ("before", "after", "reference"):
        values = metrics[name]
        errors = (f"{values[s]['hole_mse']:.4f}" for s in ("forget", "kept", "retain"))
        lines.append(f"  {name:<10} " + " / ".join(errors))
    if metrics.get("control"):
        lines.append(metrics["control"]["message"])
    return "\n".join(lines)
