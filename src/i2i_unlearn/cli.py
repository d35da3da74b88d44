"""Command line: `i2i-unlearn COMMAND` (see `i2i-unlearn --help`). Thin: parses flags, calls the library."""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(*_) -> None:
    """Ctrl-C before a command has begun: nothing is written yet, so stop at once with one line
    (raised inside an import, a KeyboardInterrupt can come out of some libraries as another error)."""
    sys.stderr.write("i2i-unlearn: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


AS_PROGRAM = __name__ == "__main__" or os.path.basename(sys.argv[0]) == "i2i-unlearn"
if AS_PROGRAM:  # not when a program of someone else's imports us (a notebook, the tests)
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402

from .errors import StopAndResume, UserError, check_memory, check_number  # noqa: E402
from .records import main_process, set_invocation  # noqa: E402
from .runconfig import invocation  # noqa: E402


MODEL_HELP = "checkpoint folder, or bundled[:NAME] (e.g. bundled:diffusion-fashion-mnist)"


class _Help(argparse.HelpFormatter):
    """--help that shows each flag's default after what it does (unless the text already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (not action.option_strings or default is None or default is False or default == argparse.SUPPRESS
                or "default" in text or action.nargs == 0):
            return text
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown or 'none'})".replace("%", "%%").replace("%%(", "%(")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 2, like every other bad input; --help shows defaults."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"i2i-unlearn: error: {message} (see '{self.prog} --help')\n")


def _csv(text: str) -> list[str]:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing; give a comma-separated list, or leave the flag out")
    return parts


# The range of every numeric flag, by its name, whichever command has it: (lowest, inclusive).
# (--sampling-steps is the family's to check: what a step is, and how many its scheduler takes.)
AT_LEAST_ONE = ("steps", "batch_size", "image_size", "eval_per_class", "probe_images", "eval_every", "eval_images",
                "check_every", "val_images", "tokenizer_steps", "width", "state_every", "retain_limit")
NOT_NEGATIVE = ("warmup_steps",)
NUMBERS = {"lr": (0, False), "rate": (0, False), "forget_alpha": (0, True), "retain_alpha": (0, True), "weight_decay": (0, True),
           "grad_clip": (0, True)}
SEED_HELP = "seed of every random draw (data order, masks, noise, sampling): the same seed repeats a run"
SEED_LIMIT = 2 ** 31  # numpy's generators take below 2**32; the runs add small offsets (process, loader)


def _check_flags(args) -> None:
    """Every numeric flag in range, for every command: one rule per flag name, before any work."""
    values = vars(args)
    for name in AT_LEAST_ONE + NOT_NEGATIVE:
        value = values.get(name)
        low = 1 if name in AT_LEAST_ONE else 0
        if value is not None and value < low:
            flag = name.replace("_", "-")
            raise UserError(f"--{flag} must be at least {low}, not {value}")
    for name, (low, inclusive) in NUMBERS.items():
        if values.get(name) is not None:
            check_number(name.replace("_", "-"), values[name], low, inclusive=inclusive)
    if values.get("seed") is not None and not 0 <= values["seed"] < SEED_LIMIT:
        raise UserError(f"--seed {values['seed']} is out of range; it must be a whole number in [0, {SEED_LIMIT})")
    if values.get("image_size") and values.get("batch_size"):  # train, train-classifier; others once the model is known
        check_memory("--batch-size with --image-size", values["batch_size"], values.get("channels") or 1,
                     values["image_size"])


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
    from .models.base import SAVE_DTYPES

    parser = _Parser(prog="i2i-unlearn", description="Make an image-to-image model forget data.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train a model from scratch (optionally without some classes)")
    _add_data_flags(train, with_forget=False)
    train.add_argument("--out", required=True, help="new folder for the checkpoint and its record")
    train.add_argument("--family", default="mae", help="model family: mae (default), diffusion or vqgan")
    train.add_argument("--tokenizer", default=None,
                       help="vqgan: reuse this trained tokenizer (a VQ-GAN checkpoint or VQModel folder, or "
                            "bundled:NAME); without it a tokenizer is trained first")
    train.add_argument("--tokenizer-steps", type=int, default=2500, help="vqgan: tokenizer training steps")
    train.add_argument("--image-size", type=int, default=32, help="image side in pixels (images are resized)")
    train.add_argument("--channels", type=int, default=1, choices=[1, 3], help="1 for grey, 3 for colour")
    train.add_argument("--exclude-classes", type=lambda text: _csv(text) if text.strip() else [], default=[],
                       help="classes to leave out (retrain); empty: none")
    train.add_argument("--model-config", type=_model_settings, default={},
                       help='family settings as JSON, e.g. \'{"patch_size": 4, "depth": 6}\'')
    train.add_argument("--mask", default=None,
                       help="training mask (default: the family's: random:0.75 for mae, hybrid for diffusion, "
                            "mage for vqgan)")
    train.add_argument("--task", default=None,
                       help="learn a whole-image task instead of filling holes (diffusion): sketch[:threshold], "
                            "lowres[:factor], colourise (colour data) or jpeg[:quality]")
    train.add_argument("--init", default=None, metavar="MODEL",
                       help="start from this checkpoint's weights (same family, size and channels), e.g. to teach "
                            "an inpainting model a new --task")
    train.add_argument("--steps", type=int, default=2000, help="training steps")
    train.add_argument("--batch-size", type=int, default=128, help="images per step")
    train.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (cosine schedule)")
    train.add_argument("--weight-decay", type=float, default=0.05, help="AdamW weight decay")
    train.add_argument("--warmup-steps", type=int, default=100, help="steps of linear learning-rate warm-up")
    train.add_argument("--save-dtype", default="float32", choices=list(SAVE_DTYPES),
                       help="precision of the saved weights")
    train.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    _add_speed_flags(train)
    train.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")
    _add_resume_flags(train)
    _add_tracking_flags(train)

    classifier = commands.add_parser("train-classifier",
                                     help="train the small classifier used for features and forget-class accuracy")
    _add_data_flags(classifier, with_forget=False)
    classifier.add_argument("--out", required=True, help="new folder for the classifier and its record")
    classifier.add_argument("--image-size", type=int, default=32, help="image side in pixels (images are resized)")
    classifier.add_argument("--channels", type=int, default=1, choices=[1, 3], help="1 for grey, 3 for colour")
    classifier.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    classifier.add_argument("--steps", type=int, default=2000, help="training steps")
    classifier.add_argument("--batch-size", type=int, default=128, help="images per step")
    classifier.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate")
    classifier.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    classifier.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")

    memorise = commands.add_parser("memorise", help="fine-tune a model until it has memorised listed training images "
                                                    "(the subject of a sample-level deletion request)")
    memorise.add_argument("--model", required=True, help=MODEL_HELP)
    memorise.add_argument("--images", required=True, metavar="LIST",
                          help="text file of the training images to memorise (ids or paths, one a line)")
    memorise.add_argument("--out", required=True, help="new folder for the fine-tuned checkpoint and its record")
    memorise.add_argument("--dataset", default="fashion-mnist", help="the model's training data (dataset spec)")
    memorise.add_argument("--steps", type=int, default=1500, help="fine-tuning steps")
    memorise.add_argument("--batch-size", type=int, default=64, help="images per step, listed and ordinary")
    memorise.add_argument("--rate", type=float, default=0.5,
                          help="draws of each listed image per step (at most half of each batch is listed images)")
    memorise.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (cosine schedule)")
    memorise.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    memorise.add_argument("--warmup-steps", type=int, default=50, help="steps of linear learning-rate warm-up")
    memorise.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    memorise.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")

    demo = commands.add_parser("demo", help="a bundled model forgets two Fashion-MNIST classes (or a person's images)")
    demo.add_argument("--out", default="runs/demo", help="new folder for the results (default runs/demo)")
    demo.add_argument("--model", default="mae", help="which bundled model: mae (default), diffusion or vqgan")
    demo.add_argument("--scenario", default="classes", choices=["classes", "samples"],
                      help="classes (default): forget two classes; samples: a model that memorised 64 private images "
                           "deletes 32 of them, checked by a calibrated membership attack (no relearning probe)")
    demo.add_argument("--forget-classes", type=_csv, default=None, help="default: Trouser,Bag")
    _add_relearn_flag(demo)
    _add_eval_flags(demo)
    _add_unlearn_flags(demo)
    _add_sign_flag(demo)

    unlearn = commands.add_parser("unlearn", help="make a checkpoint forget a forget set")
    unlearn.add_argument("--model", required=True, help=MODEL_HELP)
    unlearn.add_argument("--out", required=True, help="new folder for the unlearned checkpoint")
    _add_data_flags(unlearn)
    _add_resume_flags(unlearn)
    _add_unlearn_flags(unlearn)
    _add_sign_flag(unlearn)
    _add_tracking_flags(unlearn)

    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on the retain and forget test sets")
    evaluate.add_argument("--model", required=True, help=MODEL_HELP)
    evaluate.add_argument("--out", required=True, help="new folder for metrics.json and samples.png")
    _add_data_flags(evaluate)
    _add_eval_flags(evaluate)
    evaluate.add_argument("--batch-size", type=int, default=100, help="images completed at once")
    evaluate.add_argument("--original", default=None,
                          help="the checkpoint before unlearning: with it, the relearning probe runs (--relearn)")
    evaluate.add_argument("--retrained", default=None, help="checkpoint retrained without the forget set: probed too")
    evaluate.add_argument("--relearn", type=_csv, default=None,
                          help="relearning probes (default, strong, both or none); default: both when --original is "
                               "given, else none")
    evaluate.add_argument("--members", default=None, metavar="LIST",
                          help="membership attack on these training images (a file of ids/paths; default: forget "
                               "images), against --non-members")
    evaluate.add_argument("--non-members", default=None, metavar="LIST",
                          help="held-out test images the attack must tell from --members (default: test images of "
                               "the forget images' classes)")
    evaluate.add_argument("--reference", default=None, metavar="MODEL",
                          help="a model that never trained on the members (e.g. the one before they were added): "
                               "adds the calibrated attack, each image's loss minus its loss under this model")
    evaluate.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    evaluate.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")

    compare = commands.add_parser("compare", help="every method and the retrained model, side by side")
    compare.add_argument("--model", required=True, help=MODEL_HELP)
    compare.add_argument("--retrained", default=None, help="checkpoint trained without the forget set")
    compare.add_argument("--methods", type=_csv, default=None, help="default: every method")
    compare.add_argument("--out", required=True, help="new folder for compare.json, compare.md, samples.png and the models")
    _add_relearn_flag(compare)
    _add_data_flags(compare)
    _add_eval_flags(compare)
    _add_unlearn_flags(compare)

    sweep = commands.add_parser("sweep", help="the paper's method over several forget_alpha values, plotted")
    sweep.add_argument("--model", required=True, help=MODEL_HELP)
    sweep.add_argument("--alphas", type=_csv, default=["0.02", "0.05", "0.1", "0.2", "0.5", "1.0"],
                       help="forget_alpha of each point, comma-separated")
    sweep.add_argument("--compare", default=None, help="a compare.json whose models to mark on the plot")
    sweep.add_argument("--out", required=True, help="new folder for sweep.json, tradeoff.png and the models")
    _add_data_flags(sweep)
    _add_eval_flags(sweep)
    _add_unlearn_flags(sweep)

    report = commands.add_parser("report", help="run folders as one self-contained HTML page")
    report.add_argument("run_dirs", nargs="+", help="folders written by demo, evaluate, compare or sweep")
    report.add_argument("--out", default=None, help="new HTML file (default: <first run dir>/report.html)")

    probe = commands.add_parser("relearn-probe", help="is it really forgotten? fine-tune briefly on forget images "
                                                      "and watch how fast the forget set comes back")
    probe.add_argument("--model", required=True, help="the unlearned checkpoint (" + MODEL_HELP + ")")
    probe.add_argument("--retrained", default=None, help="checkpoint retrained without the forget set (reference)")
    probe.add_argument("--original", default=None, help="the checkpoint before unlearning (optional)")
    probe.add_argument("--out", required=True, help="new folder for relearn.json")
    _add_data_flags(probe)
    probe.add_argument("--probe-images", type=int, default=16, help="forget training images to fine-tune on")
    probe.add_argument("--steps", type=int, default=60, help="fine-tuning steps")
    probe.add_argument("--batch-size", type=int, default=16, help="images per fine-tuning step")
    probe.add_argument("--lr", type=float, default=1e-4, help="AdamW learning rate of the fine-tuning")
    probe.add_argument("--eval-every", type=int, default=15, help="steps between measurements")
    probe.add_argument("--eval-images", type=int, default=100, help="forget test images measured at each point")
    probe.add_argument("--sampling-steps", type=int, default=None,
                       help="sampling steps of a completion (default: the family's)")
    probe.add_argument("--seed", type=int, default=0, help=SEED_HELP)

    verify = commands.add_parser("verify", help="check a deletion certificate against the files on disk")
    verify.add_argument("certificate", help="an unlearned checkpoint folder or its certificate.json")
    verify.add_argument("--no-data", action="store_true", help="skip re-hashing the forget and retain data")
    verify.add_argument("--evaluate", action="store_true", help="also recompute the recorded metrics")
    verify.add_argument("--public-key", default=None,
                        help="PEM public key the certificate must be signed with (your organisation's); "
                             "without it a signature is checked against the certificate.pub beside it")
    for command in commands.choices.values():
        command.add_argument("--config", metavar="FILE", default=None,
                             help="YAML or JSON file of flag names and values (flags given here override it), or "
                                  "the record a run wrote, to repeat that run")
    return parser


def _command_parser(parser, name: str):
    """The sub-parser of command `name` (None if there is no such command)."""
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return commands.choices.get(name)


def _with_config(parser, argv: list[str]) -> list[str]:
    """`argv` with the flags of its `--config FILE` put in front of the ones typed (which so override them)."""
    from .runconfig import config_tokens, read_config, split_config

    argv, path = split_config(argv)
    if path is None:
        return argv
    command = argv[0] if argv else ""
    sub = None if command.startswith("-") else _command_parser(parser, command)
    if sub is None:
        raise UserError("--config goes with a command, e.g. i2i-unlearn unlearn --config run.yaml")
    return [command, *config_tokens(sub, read_config(path, command), path), *argv[1:]]


def _add_relearn_flag(parser):
    from .relearn import ATTACKERS

    parser.add_argument("--relearn", type=_csv, default=list(ATTACKERS),
                        help="relearning probes to run on each model: default (16 forget images, 60 steps, lr 1e-4), "
                             "strong (worst case over lr 1e-4, 3e-4, 1e-3, 200 steps), both (the default: "
                             "default,strong) or none")


def _attackers(args) -> tuple[str, ...]:
    from .relearn import ATTACKERS

    if args.relearn == ["none"]:
        return ()
    if args.relearn == ["both"]:
        return ATTACKERS
    for name in args.relearn:
        if name not in ATTACKERS:
            raise UserError(f"--relearn {name!r} is no attacker; give default, strong, both or none")
    if len(set(args.relearn)) < len(args.relearn):
        raise UserError(f"--relearn {','.join(args.relearn)} repeats an attacker; name each once")
    return tuple(args.relearn)


def _add_sign_flag(parser):
    parser.add_argument("--sign-key", default=None, metavar="FILE",
                        help="Ed25519 private key (PEM) that signs the deletion certificate; make one with "
                             "'openssl genpkey -algorithm ed25519 -out key.pem'")


def _add_tracking_flags(parser):
    parser.add_argument("--log-with", default=None, metavar="TRACKER",
                        help="also log the run's curves to an experiment tracker, through Accelerate: tensorboard, "
                             "wandb, mlflow, aim, comet_ml, clearml, dvclive, swanlab or trackio (its package must "
                             "be installed)")
    parser.add_argument("--log-dir", default=None,
                        help="folder of a file-writing tracker's logs (default: OUT.logs beside --out)")


def _add_resume_flags(parser):
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from OUT.partial/ (same flags as that run)")
    parser.add_argument("--state-every", type=int, default=100,
                        help="save a resumable state every N steps (default 100; Ctrl-C also saves one)")


def _add_eval_flags(parser):
    parser.add_argument("--task", default=None,
                        help="evaluation task: a mask (center[:r], outpaint[:r], random[:r], ...) or, for a model "
                             "trained on one, its degradation (sketch, lowres, colourise, jpeg); default: center, "
                             "or the model's degradation")
    parser.add_argument("--eval-per-class", type=int, default=50, help="test images per class to evaluate on")
    parser.add_argument("--features", default="efficientnet-lite0",
                        help="feature extractor for FID/KID/IS/cosine: efficientnet-lite0 (default), "
                             "inception-v3:FILE, clip:DIR, classifier[:DIR]")
    parser.add_argument("--classifier", default="auto",
                        help="classifier folder judging class accuracy; 'auto' = bundled one for the dataset, "
                             "'none' = skip")
    parser.add_argument("--sampling-steps", type=int, default=None,
                        help="sampling steps of a completion (diffusion: DDIM steps; vqgan: decoding iterations; "
                             "default: the family's)")


def _eval_sets(args, splits):
    from .evaluate import eval_sets

    return eval_sets(splits, args.eval_per_class, args.seed)


def _add_speed_flags(parser):
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                        help="bf16: the forward pass under bfloat16 autocast, weights and optimiser in float32 "
                             "(faster on GPUs and CPUs with bf16 units; see docs/benchmarks.md)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the step (a compilation of up to minutes first; see docs/benchmarks.md)")


def _add_unlearn_flags(parser):
    from .methods import AUTO, METHODS, NOISE_KINDS
    from .models.base import SAVE_DTYPES
    from .unlearn import UnlearnConfig

    defaults = UnlearnConfig()
    parser.add_argument("--method", default=defaults.method, choices=[AUTO, *sorted(METHODS)],
                        help=f"unlearning method (docs/results.md compares them); {AUTO}: in a controlled run "
                             "'calibrated' for a forget list given --calibration (MAE, VQ-GAN: docs/deletion.md), else "
                             "i2i_max_loss (forgetting that a short fine-tune does not undo: docs/relearning.md); the "
                             "paper's i2i with --fixed-alpha")
    parser.add_argument("--forget-alpha", type=float, default=defaults.forget_alpha,
                        help="weight of the forget term (where a controlled run starts)")
    parser.add_argument("--retain-alpha", type=float, default=defaults.retain_alpha, help="weight of the retain term")
    parser.add_argument("--noise", default=defaults.noise, choices=NOISE_KINDS,
                        help="noise image whose embedding the forget images are pulled to")
    parser.add_argument("--mask", default=None,
                        help="mask during unlearning (default: the family's training mask, e.g. random:0.75 for "
                             "mae, hybrid for diffusion, mage for vqgan)")
    parser.add_argument("--steps", type=int, default=None,
                        help="most steps of a controlled run (default 600), all steps of a --fixed-alpha run "
                             "(default 300)")
    parser.add_argument("--retain-budget", type=float, default=None,
                        help="largest relative rise of the retain validation error the run may spend on forgetting "
                             f"(default {defaults.retain_budget:g} = 5%%); the run adapts forget_alpha within it")
    parser.add_argument("--forget-target", default=None,
                        help="forget validation error to reach: 'noise' (default for --forget-classes: the model's "
                             "error when it sees noise instead of the image, but at least 1.3x the original error), "
                             "'unseen' (default for --forget-list: its error on held-out images of the same classes, "
                             "never trained on), 'attack' (a forget list with --calibration: until the calibrated "
                             "membership attack cannot tell the listed images from held-out ones, AUC 0.5 +- 0.05) "
                             "or a ratio to the original error, e.g. 3")
    parser.add_argument("--calibration", default=None, metavar="MODEL",
                        help="for a forget list: a model that never trained on the listed images (the model before "
                             "the fine-tune that saw them); the deletion then aims each image at that model's loss "
                             "on it (method 'calibrated'; the diffusion family keeps the unseen level: "
                             "docs/deletion.md); the samples demo uses the bundled model")
    parser.add_argument("--fixed-alpha", action="store_true",
                        help="no control: train exactly --steps steps at --forget-alpha (the paper's setting)")
    parser.add_argument("--settle", type=float, default=None, metavar="TOL",
                        help="stop early once the forget and retain terms have settled: each term's mean over "
                             "the last 50 steps within TOL (e.g. 0.02) of its mean over the 50 before")
    parser.add_argument("--check-every", type=int, default=None,
                        help=f"steps between validation checks of a controlled run (default {defaults.check_every})")
    parser.add_argument("--val-images", type=int, default=None,
                        help="validation images per set held out of training for a controlled run "
                             f"(default {defaults.val_images})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per set per step")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="AdamW learning rate (constant after warm-up)")
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay, help="AdamW weight decay")
    parser.add_argument("--beta1", type=float, default=defaults.beta1, help="AdamW first-moment decay")
    parser.add_argument("--beta2", type=float, default=defaults.beta2, help="AdamW second-moment decay")
    parser.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps,
                        help="steps of linear learning-rate warm-up")
    parser.add_argument("--grad-clip", type=float, default=defaults.grad_clip,
                        help="max gradient norm; 0 turns clipping off")
    parser.add_argument("--seed", type=int, default=defaults.seed, help=SEED_HELP)
    parser.add_argument("--cpu", action="store_true", help="stay on the CPU even if a GPU is present")
    parser.add_argument("--save-dtype", default=None, choices=list(SAVE_DTYPES),
                        help="precision of the saved weights (default: the source checkpoint's)")
    _add_speed_flags(parser)


CONTROL_FLAGS = ("retain_budget", "forget_target", "check_every", "val_images")  # only a controlled run reads them


def _unlearn_config(args, fixed: str | None = None):
    """The UnlearnConfig of the flags. `fixed`: why this command runs at fixed alphas (a sweep)."""
    from .unlearn import UnlearnConfig

    defaults = UnlearnConfig()
    fixed = fixed or ("--fixed-alpha" if args.fixed_alpha else None)
    given = [name for name in CONTROL_FLAGS if getattr(args, name) is not None]
    if fixed and given:
        flag = "--" + given[0].replace("_", "-")
        raise UserError(f"{flag} sets the control of a run, and {fixed} turns the control off; drop one of them")
    control = {name: getattr(defaults, name) if getattr(args, name) is None else getattr(args, name)
               for name in CONTROL_FLAGS}
    if fixed:
        control["retain_budget"] = None
    if args.calibration is not None and not getattr(args, "forget_list", None) \
            and getattr(args, "scenario", None) != "samples":
        where = "--scenario samples" if hasattr(args, "scenario") else "a forget list (--forget-list)"
        raise UserError(f"--calibration is for {where}: a model that never trained on the listed images; for "
                        "forget classes leave it out")
    return UnlearnConfig(method=args.method, forget_alpha=args.forget_alpha, retain_alpha=args.retain_alpha,
                         noise=args.noise, mask=args.mask, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, weight_decay=args.weight_decay, beta1=args.beta1, beta2=args.beta2,
                         warmup_steps=args.warmup_steps, grad_clip=args.grad_clip, seed=args.seed,
                         settle=args.settle, precision=args.precision, compile=args.compile,
                         save_dtype=args.save_dtype, calibration=args.calibration, **control)


def _splits(args, model):
    from .data import make_splits

    return make_splits(args.dataset, model.image_size, model.channels, forget_classes=args.forget_classes,
                       forget_list=args.forget_list, retain_classes=args.retain_classes,
                       retain_limit=args.retain_limit, retain_source=args.retain_source,
                       seed=getattr(args, "seed", 0))


def _processes(args) -> None:
    """Set up the launch's processes first: with --cpu, several CPU processes share the work (else a
    GPU-less launch would be one process)."""
    from accelerate import PartialState

    PartialState(cpu=args.cpu)


def _run_demo(args) -> None:
    from .demo import run_demo

    from .audit import load_signing_key

    config = _unlearn_config(args)
    config.check()
    key = load_signing_key(args.sign_key) if args.sign_key else None
    if args.scenario == "samples":
        from .demo_samples import run_samples_demo

        if args.forget_classes:
            raise UserError("--forget-classes is for --scenario classes; the samples scenario deletes a bundled "
                            "list of 32 images")
        _processes(args)
        run_samples_demo(args.out, args.model, args.eval_per_class, config, task=args.task, cpu=args.cpu,
                         features=args.features, classifier=args.classifier, steps=args.sampling_steps, sign_key=key)
        return
    _processes(args)
    run_demo(args.out, args.forget_classes, args.eval_per_class, config, task=args.task, cpu=args.cpu,
             features=args.features, classifier=args.classifier, family=args.model, steps=args.sampling_steps,
             sign_key=key, attackers=_attackers(args))


def _run_unlearn(args) -> None:
    from .models import load_model
    from .unlearn import unlearn

    from .audit import load_signing_key

    config = _unlearn_config(args)
    config.check()
    key = load_signing_key(args.sign_key) if args.sign_key else None
    model = load_model(args.model)
    splits = _splits(args, model)
    if args.state_every < 1:
        raise UserError(f"--state-every must be at least 1, not {args.state_every}")
    _, record = unlearn(model, splits, config, out=args.out, cpu=args.cpu, source=str(args.model), resume=args.resume,
                        state_every=args.state_every, sign_key=key, log_with=args.log_with, log_dir=args.log_dir)
    if main_process():  # one line, also when launched as several processes
        if "control" in record:
            print(record["control"]["message"])
        if "settled_at" in record and "control" not in record:
            print(f"the forget and retain terms settled (--settle {config.settle:g}); stopped at step "
                  f"{record['settled_at']} of {config.max_steps}")
        print(f"unlearned in {record['seconds']:.0f} s on {record['processes']} process(es); saved to {args.out}")


def _run_evaluate(args) -> None:
    from pathlib import Path

    from accelerate import PartialState

    from .data import read_membership_lists
    from .evaluate import Evaluator
    from .metrics.membership import describe_attacks
    from .models import load_model, same_kind
    from .records import RunRecord, prepare_out_dir
    from .relearn import describe, relearning
    from .viz import completion_rows, sample_grid

    state = PartialState(cpu=args.cpu)  # several processes (torchrun, accelerate launch) share the images out
    model = load_model(args.model).to(state.device)
    _resolve_task(args, model)
    model.check_steps(args.sampling_steps)
    check_memory("--batch-size", args.batch_size, model.channels, model.image_size)
    if args.relearn is None:
        args.relearn = ["both"] if args.original else ["none"]
    attackers = _attackers(args)
    if attackers and not args.original:
        raise UserError("--relearn needs --original: steps to relearn are counted against the original model's "
                        "forget error; pass the checkpoint before unlearning")
    if (args.members is None) != (args.non_members is None):
        raise UserError("--members and --non-members go together: the attack tells one list from the other")
    references = {name: same_kind(load_model(path), model, name, path)
                  for name, path in (("original", args.original), ("retrained", args.retrained),
                                     ("reference", args.reference)) if path}
    attack_reference = references.pop("reference", None)
    splits = _splits(args, model)
    members = None
    if args.members:
        members = read_membership_lists(args.members, args.non_members, splits.forget.dataset,
                                        splits.retain_test.dataset)
    evaluator = Evaluator(splits, _eval_sets(args, splits), args.task, args.features, args.classifier, args.seed,
                          args.sampling_steps, args.eval_per_class, batch_size=args.batch_size, members=members,
                          reference=attack_reference)
    folder = prepare_out_dir(args.out)  # every process checks it, the first creates it
    record = RunRecord("evaluate", {key: value for key, value in vars(args).items()})
    metrics, samples, auc = evaluator(model)
    attacks = evaluator.attacks(model) if members or attack_reference else None
    probe = (relearning({"model": model, **references}, splits, attackers, args.sampling_steps, args.seed,
                        say=print if state.is_main_process else lambda *_: None) if attackers else None)
    if not state.is_main_process:
        return  # one writer
    record.finish(model=str(args.model), family=model.family, task=args.task, features=evaluator.extractor.name,
                  data=splits.info, metrics=metrics, membership_inference={"model": auc},
                  evaluation=evaluator.describe(), processes=state.num_processes, relearn=probe,
                  **({"membership": {**attacks, "member_list": args.members, "non_member_list": args.non_members,
                                     "reference": args.reference}} if attacks else {}))
    record.write(Path(folder) / "metrics.json")
    sample_grid([(name, completion_rows(s["truth"], s["hole"], {"output": s["completed"]}, model.degradation))
                 for name, s in samples.items()], Path(folder) / "samples.png")
    if attacks:
        print(describe_attacks(attacks))
    else:
        print(f"membership inference AUC {auc:.3f} (0.5 = cannot tell members)")
    for name, values in metrics.items():
        shown = {k: f"{v:.4f}" for k, v in values.items() if k not in ("images", "kid_std")}
        if "kid" in shown:  # std over random subsets; none when the whole sets were one subset (exact)
            shown["kid"] += f"±{values['kid_std']:.4f}" if values.get("kid_std") else " (exact, whole sets)"
        print(name, " ".join(f"{k}={v}" for k, v in shown.items()), f"({values['images']} images)")
    if probe:
        print("\n".join(describe(probe)))


def _resolve_task(args, model) -> None:
    """`--task` defaults to the model's own (the centre hole, or the degradation it was trained for);
    a task, or an unlearning --mask, it cannot do is refused now."""
    args.task = args.task or model.default_task
    model.check_task(args.task)
    if getattr(args, "mask", None) is not None:
        model.check_task(args.mask)


def _run_compare(args) -> None:
    from .compare import compare
    from .methods import METHODS, create_method
    from .models import load_model, same_kind
    from .unlearn import load_calibration

    config = _unlearn_config(args)
    config.check()
    _processes(args)
    methods = args.methods or [name for name, cls in METHODS.items()
                               if config.calibration or not cls.needs_calibration]  # default: every method it can run
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UserError(f"unknown method(s) {', '.join(unknown)}; choose from: {', '.join(METHODS)}")
    model = load_model(args.model)
    for name in methods:  # a method that needs a calibration model fails now, not after the others ran
        if METHODS[name].needs_calibration:
            create_method(name, model, calibration=load_calibration(config.calibration, model)
                          if config.calibration else None)
    _resolve_task(args, model)
    model.check_steps(args.sampling_steps)
    if args.retrained:
        same_kind(load_model(args.retrained), model, "retrained", args.retrained)  # now, not after every method
    splits = _splits(args, model)
    compare(args.model, splits, _eval_sets(args, splits), config, methods, args.out, args.retrained,
            args.task, cpu=args.cpu, features=args.features, classifier=args.classifier,
            eval_per_class=args.eval_per_class, steps=args.sampling_steps, attackers=_attackers(args))


def _run_sweep(args) -> None:
    from .models import load_model
    from .sweep import sweep
    from .unlearn import UnlearnConfig

    config = _unlearn_config(args, fixed="a sweep (each point at its own --alphas value)")
    if args.forget_alpha != UnlearnConfig.forget_alpha:
        raise UserError("--forget-alpha has no effect on a sweep, whose points take their forget_alpha from "
                        "--alphas; drop it")
    config.check()
    _processes(args)
    try:
        alphas = [float(a) for a in args.alphas]
    except ValueError:
        raise UserError(f"--alphas must be numbers, e.g. 0.05,0.2,1, not {','.join(args.alphas)}") from None
    for alpha in alphas:  # every point's setting, before any folder exists
        check_number("alphas", alpha, 0)
    if len(set(alphas)) < len(alphas):
        raise UserError(f"--alphas {','.join(args.alphas)} repeats a value; give each forget_alpha once")
    if args.compare and not os.path.isfile(args.compare):
        raise UserError(f"--compare {args.compare} not found; pass the compare.json written by 'compare'")
    model = load_model(args.model)
    _resolve_task(args, model)
    model.check_steps(args.sampling_steps)
    splits = _splits(args, model)
    sweep(args.model, splits, _eval_sets(args, splits), config, alphas, args.out, args.compare, args.task,
          cpu=args.cpu, features=args.features, classifier=args.classifier, steps=args.sampling_steps)


def _run_train(args) -> None:
    from .train import TrainConfig, train

    config = TrainConfig(dataset=args.dataset, family=args.family, image_size=args.image_size,
                         channels=args.channels, exclude_classes=args.exclude_classes, model=args.model_config,
                         mask=args.mask, task=args.task, init=args.init, steps=args.steps, batch_size=args.batch_size,
                         lr=args.lr, weight_decay=args.weight_decay, warmup_steps=args.warmup_steps, seed=args.seed,
                         save_dtype=args.save_dtype, tokenizer=args.tokenizer, tokenizer_steps=args.tokenizer_steps,
                         precision=args.precision, compile=args.compile)
    if args.state_every < 1:
        raise UserError(f"--state-every must be at least 1, not {args.state_every}")
    record = train(config, args.out, cpu=args.cpu, resume=args.resume, state_every=args.state_every,
                   log_with=args.log_with, log_dir=args.log_dir)
    if main_process():  # one line, also when launched as several processes
        print(f"trained {record['config']['steps']} steps in {record['seconds']:.0f} s, "
              f"final loss {record['final_loss']:.4f}; saved to {args.out}")


def _run_memorise(args) -> None:
    from .memorise import MemoriseConfig, memorise

    config = MemoriseConfig(images=args.images, dataset=args.dataset, steps=args.steps, batch_size=args.batch_size,
                            rate=args.rate, lr=args.lr, weight_decay=args.weight_decay,
                            warmup_steps=args.warmup_steps, seed=args.seed)
    record = memorise(args.model, config, args.out, cpu=args.cpu)
    if main_process():
        print(f"memorised {len(record['data']['listed'])} images (each seen about "
              f"{record['data']['exposures_per_listed_image']:g} times) in {record['seconds']:.0f} s; saved to {args.out}")


def _run_report(args) -> None:
    from pathlib import Path

    from .report import write_report

    print(write_report(args.run_dirs, args.out or Path(args.run_dirs[0]) / "report.html"))


def _run_train_classifier(args) -> None:
    from .metrics.classifier import ClassifierConfig, train_classifier

    config = ClassifierConfig(dataset=args.dataset, image_size=args.image_size, channels=args.channels,
                              width=args.width, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed)
    record = train_classifier(config, args.out, cpu=args.cpu)
    if main_process():  # one line, also when launched as several processes
        print(f"trained in {record['seconds']:.0f} s; test accuracy {record['test_accuracy']:.4f} on "
              f"{record['test_images']} images; saved to {args.out}")


def _run_relearn_probe(args) -> None:
    from .models import load_model, same_kind
    from .relearn import ProbeConfig, relearn_probe

    config = ProbeConfig(images=args.probe_images, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         eval_every=args.eval_every, eval_images=args.eval_images, seed=args.seed)
    config.check()
    models = {"unlearned": load_model(args.model)}
    for name, path in (("original", args.original), ("retrained", args.retrained)):
        if path:
            models[name] = same_kind(load_model(path), models["unlearned"], name, path)
    splits = _splits(args, models["unlearned"])
    record = relearn_probe(models, splits, config, args.out, args.sampling_steps)
    print(f"forget-test hole MSE before -> after {config.steps} fine-tuning steps on {config.images} forget images:")
    for name, row in record["summary"].items():
        print(f"  {name:<10} {row['before']:.4f} -> {row['after']:.4f} (recovered {row['recovered']:.1%})")
    print(f"wrote {args.out}/relearn.json")


def _run_verify(args) -> None:
    from .audit import load_public_key, reevaluate, verify

    notes: list[str] = []
    key = load_public_key(args.public_key) if args.public_key else None
    problems = verify(args.certificate, check_data=not args.no_data, notes=notes, public_key=key)
    evaluated = args.evaluate
    if evaluated:
        count = len(notes)
        problems += reevaluate(args.certificate, notes=notes)
        evaluated = len(notes) == count  # a note: there were no metrics to recompute
    for note in notes:
        print(f"NOTE {note}")
    for problem in problems:
        print(f"MISMATCH {problem}")
    if problems:
        raise VerificationFailed(f"{len(problems)} mismatch(es) between {args.certificate} and the files on disk")
    checked = ("the certificate's fields" + (" and signature" if key is not None else "") + ", checkpoints"
               + ("" if args.no_data else ", data") + (", metrics" if evaluated else ""))
    print(f"verified {args.certificate}: {checked} match the certificate")


class VerificationFailed(Exception):
    """A certificate that does not match the files: exit status 1 (not a usage error)."""


COMMANDS = {"train": _run_train, "train-classifier": _run_train_classifier, "memorise": _run_memorise,
            "demo": _run_demo,
            "unlearn": _run_unlearn, "evaluate": _run_evaluate, "compare": _run_compare, "sweep": _run_sweep,
            "report": _run_report, "relearn-probe": _run_relearn_probe, "verify": _run_verify}


def main(argv: list[str] | None = None) -> int:
    try:  # Ctrl-C at any time ends with one line
        return _main(argv)
    except KeyboardInterrupt:
        print("i2i-unlearn: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    try:
        if AS_PROGRAM and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, _interrupted_while_starting)
            try:
                parser = build_parser()  # imports torch, transformers, diffusers
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler if previous is _interrupted_while_starting
                              else previous)
        else:
            parser = build_parser()
        args = parser.parse_args(_with_config(parser, list(sys.argv[1:] if argv is None else argv)))
        _check_flags(args)  # (a flag's type check may raise UserError too)
        set_invocation(invocation(args))  # every record of this run can replay it
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own bars show progress; one line per error stays one line
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"i2i-unlearn: error: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:  # any file or folder the system will not let us open, wherever it is read
        print(f"i2i-unlearn: error: {exc.filename or 'a file'}: {exc.strerror or 'permission denied'}; give this "
              "user access to it (chmod / chown) or pass another path", file=sys.stderr)
        return 2
    except VerificationFailed as exc:
        print(f"i2i-unlearn: verification failed: {exc}", file=sys.stderr)
        return 1
    except StopAndResume as exc:
        print(f"i2i-unlearn: {exc}", file=sys.stderr)
        return 128 + exc.signal
    finally:
        set_invocation(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
