"""What one unlearning step costs, per family: our loop against a minimal hand-written one, and an
encoder-only step against a whole-model step.

    python benchmarks/step_cost.py [--steps 20] [--batch-size 64] [--rounds 3]

For each bundled family, on Fashion-MNIST (forget Trouser + Bag, `--batch-size` forget and as
many retain images per step, the defaults of `i2i-unlearn unlearn`):

- ours: `engine.run` with the paper's method at a fixed forget_alpha (data loaders, Accelerate,
  schedule, logging; no controller);
- hand: the same arithmetic written out as a bare PyTorch loop (the family's draw / embed /
  embedding_distance, AdamW, gradient clipping) on images already stacked in memory;
- whole: `engine.run` with Noisy Label, a baseline that trains the whole generator, as Max Loss
  and Retain Label do.

The three are timed in turns, `--rounds` times, after one warm-up round; the best round of
each counts (the least disturbed by other work on the machine). Prints steps per second and the
ratios ours ÷ hand (throughput) and whole ÷ ours (time per step), measured in this one run.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from i2i_unlearn import engine, load_model, make_splits
from i2i_unlearn.data import stack_images
from i2i_unlearn.methods import create_method
from i2i_unlearn.models import DEFAULT_BUNDLED


def ours(model, splits, method_name: str, steps: int, batch_size: int) -> float:
    method = create_method(method_name, model)
    parameters = method.trainable_parameters()
    loaders = {"forget": engine.loader(splits.forget, batch_size, 0),
               "retain": engine.loader(splits.retain, batch_size, 1)}
    optim = engine.OptimConfig(steps=steps, lr=3e-4, warmup_steps=0, grad_clip=3.0)
    accelerator = engine.make_accelerator(cpu=True)
    start = time.perf_counter()
    engine.run(method, parameters, loaders, optim, seed=0, accelerator=accelerator, description="ours")
    return time.perf_counter() - start


def hand(model, forget: torch.Tensor, retain: torch.Tensor, steps: int, batch_size: int) -> float:
    """The paper's step written out: nothing but the family's arithmetic and the optimiser."""
    teacher = copy.deepcopy(model.encoder).requires_grad_(False).eval()
    start = time.perf_counter()
    parameters = model.freeze_all_but_encoder()
    optimizer = torch.optim.AdamW(parameters, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.05)
    model.train()
    mask = model.training_task
    for step in range(steps):
        f = forget[(torch.arange(batch_size) + step * batch_size) % len(forget)]
        r = retain[(torch.arange(batch_size) + step * batch_size) % len(retain)]
        f_draw, r_draw = model.draw(f, mask), model.draw(r, mask)
        with torch.no_grad():
            f_target = model.embed_noise(f, f_draw, "normal", encoder=teacher)
            r_target = model.embed(r, r_draw, encoder=teacher)
        loss = (model.embedding_distance(model.embed(r, r_draw), r_target)
                + 0.2 * model.embedding_distance(model.embed(f, f_draw), f_target))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 3.0)
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}; {args.steps} steps of {args.batch_size} forget + "
          f"{args.batch_size} retain images per timing, best of {args.rounds} rounds")
    print("| family | ours (steps/s) | hand-written (steps/s) | ours ÷ hand | whole-model (steps/s) | "
          "whole ÷ encoder-only (time per step) |")
    print("|---|---|---|---|---|---|")
    for family in sorted(DEFAULT_BUNDLED):
        original = load_model(f"bundled:{family}")
        splits = make_splits("fashion-mnist", original.image_size, original.channels, forget_classes=["Trouser", "Bag"])
        forget, retain = (stack_images(images, 20 * args.batch_size) for images in (splits.forget, splits.retain))
        runs = {"ours": lambda m: ours(m, splits, "i2i", args.steps, args.batch_size),
                "hand": lambda m: hand(m, forget, retain, args.steps, args.batch_size),
                "whole": lambda m: ours(m, splits, "noisy_label", args.steps, args.batch_size)}
        best = {name: float("inf") for name in runs}
        for round_ in range(args.rounds + 1):
            for name, timed in runs.items():
                seconds = timed(copy.deepcopy(original))
                if round_:  # round 0 warms up
                    best[name] = min(best[name], seconds)
        rate = {name: args.steps / seconds for name, seconds in best.items()}
        print(f"| {family} | {rate['ours']:.2f} | {rate['hand']:.2f} | {rate['ours'] / rate['hand']:.2f}x | "
              f"{rate['whole']:.2f} | {best['whole'] / best['ours']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
