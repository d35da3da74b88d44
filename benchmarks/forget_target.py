"""Is the default forget target ("noise") at least as far as retraining goes? Per family.

    python benchmarks/forget_target.py

For each bundled family and its retrained twin (Trouser + Bag): the validation split a
controlled run would use (seed 0), the original model's forget validation error, the retrained
model's, and the target the controller computes (the original model's error on noise inputs).
Prints one Markdown row per family.
"""

from __future__ import annotations

from i2i_unlearn import load_model, make_splits
from i2i_unlearn.control import ControlConfig, Controller
from i2i_unlearn.data import hold_out_validation, stack_images
from i2i_unlearn.demo import bundled_retrained
from i2i_unlearn.methods import create_method
from i2i_unlearn.models import DEFAULT_BUNDLED


def controller_for(model, forget_val, retain_val) -> Controller:
    method = create_method("i2i", model)
    return Controller(method, stack_images(forget_val), stack_images(retain_val), ControlConfig(),
                      method.trainable_parameters())


def main() -> None:
    print("| family | original forget error | retrained forget error | target (noise level) | "
          "retrained ÷ original | target ÷ original |")
    print("|---|---|---|---|---|---|")
    for family in sorted(DEFAULT_BUNDLED):
        original = load_model(f"bundled:{family}")
        splits = make_splits("fashion-mnist", original.image_size, original.channels, forget_classes=["Trouser", "Bag"])
        _, forget_val, retain_val = hold_out_validation(splits, ControlConfig().val_images, seed=0)
        before = controller_for(original, forget_val, retain_val)
        retrained = controller_for(load_model(bundled_retrained(family, splits.forget_classes)), forget_val, retain_val)
        o, r, t = before.start["forget_error"], retrained.start["forget_error"], before.target
        print(f"| {family} | {o:.4f} | {r:.4f} | {t:.4f} | {r / o:.2f}x | {t / o:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
