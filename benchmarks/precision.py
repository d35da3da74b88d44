"""Seconds per unlearning step in float32, under bf16 autocast, and compiled, per family.

    python benchmarks/precision.py [--steps 12] [--full-size]

The paper's method at a fixed forget_alpha through `engine.run` (what `i2i-unlearn unlearn
--fixed-alpha --precision ... [--compile]` runs), on random images of each bundled model's
size, 64 forget + 64 retain images a step. `--full-size` adds ViT-MAE-Base at 224 px (8 + 8
images, the shapes of benchmarks/memory.py). A step's time is the median over the steps after
the first two (the compilation happens in the first). Prints each setting's time per step and
its speed-up over float32 (float32 time ÷ its time), measured in this one run, plus the
compilation time (the compiled run's first step).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from memory import CONFIGS, step_seconds  # benchmarks/memory.py, beside this script

from i2i_unlearn.methods import create_method
from i2i_unlearn.models import DEFAULT_BUNDLED, create_model, load_model

MAE_BASE = CONFIGS["ViT-MAE-Base 224 px"]["settings"]
SETTINGS = {"float32": {}, "bf16": {"precision": "bf16"}, "compiled": {"compile": True},
            "compiled + bf16": {"precision": "bf16", "compile": True}}


def step_times(build, batch: int, steps: int, settings: dict) -> list[float]:
    torch.manual_seed(0)
    method = create_method("i2i", build())
    torch._dynamo.reset()
    return step_seconds(method, method.trainable_parameters(), batch, steps, **settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    configs = {f"{family} (bundled)": (lambda f=family: load_model(f"bundled:{DEFAULT_BUNDLED[f]}"), 64, args.steps)
               for family in sorted(DEFAULT_BUNDLED)}
    if args.full_size:
        configs["ViT-MAE-Base 224 px"] = (lambda: create_model("mae", **MAE_BASE), 8, 5)
    print(f"torch threads: {torch.get_num_threads()}; seconds per step (median after the first two) and "
          "speed-up over float32")
    print("| model | images / step | " + " | ".join(SETTINGS) + " | compilation (s) |")
    print("|---|---|" + "---|" * (len(SETTINGS) + 1))
    for name, (build, batch, steps) in configs.items():
        cells, base, compiling = [], None, None
        for label, settings in SETTINGS.items():
            times = step_times(build, batch, steps, settings)
            seconds = statistics.median(times[2:])
            base = base or seconds
            cells.append(f"{seconds:.3f} s" + ("" if label == "float32" else f" ({base / seconds:.2f}x)"))
            if label == "compiled":
                compiling = times[0]
        print(f"| {name} | {batch} + {batch} | " + " | ".join(cells) + f" | {compiling:.0f} |", flush=True)


if __name__ == "__main__":
    main()
