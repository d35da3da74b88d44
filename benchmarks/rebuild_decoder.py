"""Does a rebuilt decoder erase? An MAE whose decoder is re-initialised and distilled on retain images only.

    python benchmarks/rebuild_decoder.py
    python benchmarks/rebuild_decoder.py --classes "Pullover,Ankle boot"
    python benchmarks/rebuild_decoder.py --keep-decoder          # the ablation: same training, no re-initialisation
    python benchmarks/rebuild_decoder.py --task-loss             # trained on the pixels instead (H15)
    python benchmarks/rebuild_decoder.py --reset top             # only the decoder's last layer and head (H18)
    python benchmarks/rebuild_decoder.py --cost-only             # a rebuild step against a training step
    python benchmarks/rebuild_decoder.py --model runs/mae-emoji --retrained runs/mae-emoji-retrain --dataset emoji \
        --classes "Food & Drink,Flags"

The relearning probe finds the way back to forgotten classes in the MAE's decoder (docs/relearning.md,
"Where the way back lives: the decoder"): the original encoder with a decoder that never saw the classes
relearns as slowly as the retrained model. This experiment builds such a decoder without retraining the
model: the decoder is re-initialised (transformers' own initialisation; the fixed position table kept)
and trained, with the original encoder frozen, to match the frozen original model's predictions on
retain training images under the training mask (mean squared error over every patch). The forget images
are never used. Then the same evaluation and relearning probe as benchmarks/erasure.py. The retain and
forget errors of the centre hole are printed every 100 steps (outside the timed steps), so one run also
shows when retain recovers. MAE only: it reaches into ViTMAE's decoder. Not part of the package (yet):
docs/relearning.md, H12, says why.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch

from erasure import row
from i2i_unlearn import load_model, make_splits
from i2i_unlearn.data import stack_images, subset_per_class
from i2i_unlearn.demo import bundled_retrained
from i2i_unlearn.engine import loader
from i2i_unlearn.evaluate import Evaluator, eval_sets
from i2i_unlearn.models import checkpoint_folder
from i2i_unlearn.relearn import _forget_error as centre_error  # the probe's measure: the evaluation task's hole MSE
from i2i_unlearn.relearn import relearning


# Which modules of ViTMAE's decoder are re-initialised and trained: all of it (H12), or only its top
# (the last layer, the norm and the pixel head) or only the head, with the rest kept and frozen (H18).
PARTS = ("all", "top", "head")


def prefixes(decoder, part: str) -> tuple[str, ...]:
    """The parameter-name prefixes of `part` of a ViTMAE decoder."""
    head = ("decoder_norm.", "decoder_pred.")
    return {"all": ("",), "top": (f"decoder_layers.{len(decoder.decoder_layers) - 1}.", *head), "head": head}[part]


def train_decoder_only(student, part: str = "all") -> list[torch.nn.Parameter]:
    """Freeze everything but `part` of the decoder (never its fixed position table) and return what trains."""
    student.requires_grad_(False)
    chosen = prefixes(student.hf.decoder, part)
    parameters = [p for name, p in student.hf.decoder.named_parameters()
                  if name != "decoder_pos_embed" and name.startswith(chosen)]
    for parameter in parameters:
        parameter.requires_grad_(True)
    return parameters


def rebuild_loss(student, teacher, images: torch.Tensor, draw, task_loss: bool) -> torch.Tensor:
    """One step's loss: the student's prediction against the teacher's, or with `task_loss` the MAE's
    own loss on the pixels (H15: no teacher pass)."""
    if task_loss:
        return student.task_loss(images, draw)
    with torch.no_grad():
        target = teacher.predict(images, draw)
    return ((student.predict(images, draw) - target) ** 2).mean()


def rebuild(original, splits, steps: int, lr: float, batch_size: int, seed: int, reinitialise: bool,
            task_loss: bool = False, part: str = "all", say=print):
    """A copy of `original` whose decoder (or only `part` of it) is (re-initialised and) distilled from
    `original` on retain images (with `task_loss`, trained on their pixels instead); returns it, the
    seconds the training steps took, and the log of (step, retain, forget) ratios."""
    torch.manual_seed(seed)
    student, teacher = copy.deepcopy(original), copy.deepcopy(original).eval().requires_grad_(False)
    decoder = student.hf.decoder
    fixed = decoder.decoder_pos_embed.detach().clone()
    if reinitialise:
        for prefix in prefixes(decoder, part):
            (decoder.get_submodule(prefix.rstrip(".")) if prefix else decoder).apply(student.hf._init_weights)
        with torch.no_grad():
            decoder.decoder_pos_embed.copy_(fixed)
    parameters = train_decoder_only(student, part)
    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.05)
    warmup = min(50, steps)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    retain_probe = stack_images(subset_per_class(splits.retain_test, 25, seed), 200)
    forget_probe = stack_images(subset_per_class(splits.forget_test, 50, seed), 100)
    base = (centre_error(original, retain_probe, steps=None, seed=0),
            centre_error(original, forget_probe, steps=None, seed=0))
    draws, batches = torch.Generator().manual_seed(seed), iter(loader(splits.retain, batch_size, seed))
    seconds, log = 0.0, []
    for step in range(1, steps + 1):
        images = next(batches)[0]
        start = time.perf_counter()
        student.train()
        draw = student.draw(images, student.training_task, draws)
        loss = rebuild_loss(student, teacher, images, draw, task_loss)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimiser.step()
        schedule.step()
        seconds += time.perf_counter() - start
        if step % 100 == 0 or step == steps:
            retain = centre_error(student, retain_probe, steps=None, seed=0) / base[0]
            forget = centre_error(student, forget_probe, steps=None, seed=0) / base[1]
            log.append({"step": step, "seconds": round(seconds, 1), "loss": round(loss.item(), 5),
                        "retain": round(retain, 4), "forget": round(forget, 4)})
            say(f"step {step}: {seconds:.0f} s, loss {loss.item():.4f}, centre-hole error "
                f"retain {retain:.3f}x, forget {forget:.3f}x the original's")
    student.check_finite()
    return student, seconds, log


def step_cost(original, splits, batch_size: int, task_loss: bool = False, part: str = "all", steps: int = 30,
              train_batch: int | None = None) -> float:
    """Seconds of one rebuild step (batch `batch_size`) over seconds of one training step of the whole MAE
    (its own loss, every generator parameter, AdamW, batch `train_batch`, by default the same), both
    measured here, one after the other, on the first images of the same batch."""
    train_batch = train_batch or batch_size
    images = next(iter(loader(splits.retain, max(batch_size, train_batch), 0)))[0]
    trained_on, rebuilt_on = images[:train_batch], images[:batch_size]

    def timed(parameters, loss_of) -> float:
        optimiser = torch.optim.AdamW(parameters, lr=1e-4)
        start = time.perf_counter()
        for _ in range(steps):
            loss = loss_of()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return (time.perf_counter() - start) / steps

    whole = copy.deepcopy(original).train()
    train_step = timed(whole.freeze_all_but_generator(),
                       lambda: whole.task_loss(trained_on, whole.draw(trained_on)))
    student, teacher = copy.deepcopy(original).train(), copy.deepcopy(original).eval().requires_grad_(False)
    return timed(train_decoder_only(student, part),
                 lambda: rebuild_loss(student, teacher, rebuilt_on, student.draw(rebuilt_on), task_loss)) / train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled:mae", help="an MAE checkpoint (default: the bundled one)")
    parser.add_argument("--retrained", default=None, help="that checkpoint retrained without --classes (the bar)")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--classes", default="Trouser,Bag")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--keep-decoder", action="store_true", help="the ablation: distil without re-initialising")
    parser.add_argument("--task-loss", action="store_true",
                        help="train the decoder on the pixels (the MAE's own loss) instead of the original's predictions (H15)")
    parser.add_argument("--reset", choices=PARTS, default="all",
                        help="the part of the decoder re-initialised and trained; the rest is kept and frozen (H18)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--cost-only", action="store_true",
                        help="only time a rebuild step against a training step of the whole model and print the ratio")
    args = parser.parse_args()
    original = load_model(args.model)
    if original.family != "mae":
        parser.error(f"{args.model} is a {original.family} model; this experiment rebuilds an MAE's decoder")
    splits = make_splits(args.dataset, original.image_size, original.channels,
                         forget_classes=args.classes.split(","), seed=args.seed)
    if args.cost_only:
        record = checkpoint_folder(args.model) / "train_record.json"
        train_batch = json.loads(record.read_text())["config"]["batch_size"] if record.is_file() else args.batch_size
        ratio = step_cost(original, splits, args.batch_size, args.task_loss, args.reset, train_batch=train_batch)
        print(f"a rebuild step (batch {args.batch_size}) costs {ratio:.3f}x a training step of the whole model "
              f"(batch {train_batch}); {args.steps} rebuild steps = {args.steps * ratio:.0f} training steps")
        return
    evaluator = Evaluator(splits, eval_sets(splits, 50, args.seed), seed=args.seed, membership=False, progress=False)
    before, _, _ = evaluator(original)
    retrained_path = args.retrained
    if retrained_path is None and args.model == "bundled:mae":
        retrained_path = bundled_retrained("mae", splits.forget_classes)
    print("| model | retain MSE | retain FID | forget MSE | forget FID | default attacker: 0 / 15 / 30 / 45 / 60 | "
          "÷ retrained (lowest) | steps to relearn (default / strong) | cost |")
    print("|---|---|---|---|---|---|---|---|---|")
    reference, retrain_seconds, results = None, None, {}
    if retrained_path is not None:
        retrained = load_model(retrained_path)
        retrain_seconds = json.loads((checkpoint_folder(retrained_path) / "train_record.json").read_text())["seconds"]
        metrics, _, _ = evaluator(retrained)
        probe = relearning({"original": original, "retrained": retrained}, splits, seed=args.seed, say=lambda *_: None)
        reference = probe["default"]["retrained"]
        results["retrained"] = {"metrics": metrics, "relearn": probe, "seconds": retrain_seconds}
        print(row("retrained", metrics, before, probe, None, None, None), flush=True)
    name = (("distilled decoder" if args.keep_decoder else "rebuilt decoder")
            + (f" ({args.reset})" if args.reset != "all" else "") + (", task loss" if args.task_loss else ""))
    model, seconds, log = rebuild(original, splits, args.steps, args.lr, args.batch_size, args.seed,
                                  reinitialise=not args.keep_decoder, task_loss=args.task_loss, part=args.reset)
    metrics, _, _ = evaluator(model)
    probe = relearning({"original": original, name: model}, splits, seed=args.seed, say=lambda *_: None)
    results[name] = {"metrics": metrics, "relearn": probe, "seconds": seconds, "log": log}
    print(row(name, metrics, before, probe, reference, seconds, retrain_seconds), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "dataset": args.dataset, "settings": vars(args),
                                               "classes": splits.forget_classes, "before": before,
                                               "results": results}, indent=1))


if __name__ == "__main__":
    main()
