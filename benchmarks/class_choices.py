"""The demo's recipe on other forget-class choices: does the default generalise beyond Trouser/Bag?

    python benchmarks/class_choices.py "Sandal,Shirt" "Pullover,Ankle boot"

For each choice: the bundled model, unlearned with the default UnlearnConfig, evaluated before
and after on 50 test images per class (centre inpainting). Prints one Markdown row per choice.
"""

from __future__ import annotations

import argparse
import time

from i2i_unlearn import UnlearnConfig, evaluate, load_model, make_splits, unlearn
from i2i_unlearn.evaluate import default_classifier, eval_sets
from i2i_unlearn.metrics import get_extractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("choices", nargs="+", help="comma-separated forget classes, one argument per request")
    parser.add_argument("--per-class", type=int, default=50)
    args = parser.parse_args()
    extractor, classifier = get_extractor(), default_classifier("fashion-mnist")
    print("| forget classes | retain MSE | retain FID | forget MSE | forget FID | forget class acc. | seconds |")
    print("|---|---|---|---|---|---|---|")
    for choice in args.choices:
        model = load_model("bundled")
        splits = make_splits("fashion-mnist", model.image_size, model.channels, forget_classes=choice.split(","))
        sets = eval_sets(splits, args.per_class)
        before, _ = evaluate(model, sets, extractor=extractor, classifier=classifier, progress=False)
        start = time.perf_counter()
        model, _ = unlearn(model, splits, UnlearnConfig())
        seconds = time.perf_counter() - start
        after, _ = evaluate(model, sets, extractor=extractor, classifier=classifier, progress=False)

        def change(set_name: str, key: str, digits: str) -> str:
            b, a = before[set_name][key], after[set_name][key]
            return f"{b:{digits}} -> {a:{digits}} ({a / b:.2f}x)"

        print(f"| {', '.join(splits.forget_classes)} | {change('retain', 'hole_mse', '.4f')} | "
              f"{change('retain', 'fid', '.1f')} | {change('forget', 'hole_mse', '.4f')} | "
              f"{change('forget', 'fid', '.1f')} | {change('forget', 'class_accuracy', '.2f')} | {seconds:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
