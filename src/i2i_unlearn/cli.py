"""Command line: `i2i-unlearn {demo,train,unlearn,evaluate}`. Thin: parses flags, calls the library."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 2, like every other bad input."""

    def error(self, message):
        self.exit(2, f"i2i-unlearn: error: {message} (see '{self.prog} --help')\n")


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _model_settings(text: str) -> dict:
    try:
        settings = json.loads(text)
    except json.JSONDecodeError:
        raise UserError(f"--model-config must be JSON, e.g. '{{\"depth\": 6}}', not {text!r}") from None
    if not isinstance(settings, dict):
        raise UserError("--model-config must be a JSON object, e.g. '{\"depth\": 6}'")
    return settings


def _add_data_flags(parser, with_forget: bool = True):
    parser.add_argument("--dataset", default="fashion-mnist",
                        help="fashion-mnist[:DIR], emoji or imagefolder:PATH (default: fashion-mnist)")
    if with_forget:
        parser.add_argument("--forget-classes", type=_csv, default=None, help="comma-separated class names")
        parser.add_argument("--forget-list", default=None, help="text file of image ids/paths to forget")
        parser.add_argument("--retain-classes", type=_csv, default=None,
                            help="classes to retain (default: every class not forgotten)")
        parser.add_argument("--retain-limit", type=int, default=None, help="use at most N retain images")
        parser.add_argument("--retain-source", default=None, help="proxy dataset spec for the retain set")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="i2i-unlearn", description="Make an image-to-image model forget data.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model from scratch (optionally without some classes)")
    _add_data_flags(train, with_forget=False)
    train.add_argument("--out", required=True, help="new folder for the checkpoint and its record")
    train.add_argument("--family", default="mae")
    train.add_argument("--image-size", type=int, default=32)
    train.add_argument("--channels", type=int, default=1, choices=[1, 3])
    train.add_argument("--exclude-classes", type=_csv, default=[], help="classes to leave out (retrain)")
    train.add_argument("--model-config", type=_model_settings, default={},
                       help='family settings as JSON, e.g. \'{"patch_size": 4, "depth": 6}\'')
    train.add_argument("--mask", default="random:0.75", help="training mask (default random:0.75)")
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--weight-decay", type=float, default=0.05)
    train.add_argument("--warmup-steps", type=int, default=100)
    train.add_argument("--save-dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")
    return parser


def _run_train(args) -> None:
    from .train import TrainConfig, train

    config = TrainConfig(dataset=args.dataset, family=args.family, image_size=args.image_size,
                         channels=args.channels, exclude_classes=args.exclude_classes, model=args.model_config,
                         mask=args.mask, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, seed=args.seed,
                         save_dtype=args.save_dtype)
    record = train(config, args.out, cpu=args.cpu)
    print(f"trained {record['config']['steps']} steps in {record['seconds']:.0f} s, "
          f"final loss {record['final_loss']:.4f}; saved to {args.out}")


COMMANDS = {"train": _run_train}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"i2i-unlearn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("i2i-unlearn: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
