"""Bad input tried for real: property-based tests over numeric flags, mask specs and forget lists,
and damaged or unusual image files. Each either works or ends in one UserError line."""

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from i2i_unlearn import UserError
from i2i_unlearn.cli import main
from i2i_unlearn.data import load_dataset, make_mask, parse_task
from i2i_unlearn.data.splits import read_forget_list
from i2i_unlearn.unlearn import UnlearnConfig

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6))
FIELDS = ("forget_alpha", "retain_alpha", "lr", "weight_decay", "beta1", "beta2", "grad_clip")


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=NUMBERS)
def test_any_number_in_any_unlearning_setting_is_accepted_only_if_usable(field, value):
    config = UnlearnConfig(**{field: value})
    try:
        config.check()
    except UserError as exc:
        assert "\n" not in str(exc) and field.replace("_", "-") in str(exc)
        return
    assert math.isfinite(value) and value >= 0
    if field == "lr":
        assert value > 0
    if field.startswith("beta"):
        assert value < 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(["--lr", "--forget-alpha", "--grad-clip", "--beta1", "--steps", "--batch-size",
                             "--retain-limit"]),
       value=st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "2", "abc", ""]))
def test_cli_numbers_end_in_one_line_or_run(tmp_path, capsys, flag, value):
    out = tmp_path / f"out{abs(hash((flag, value)))}"
    try:
        code = main(["unlearn", "--model", "bundled", "--forget-classes", "Bag", "--steps", "1", "--batch-size",
                     "2", "--retain-limit", "10", flag, value, "--out", str(out)])
    except SystemExit as exc:  # argparse: a value that is not a number at all
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    if code != 0:
        assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
        assert not out.exists()


@settings(max_examples=300, deadline=None)
@given(spec=st.one_of(st.text(max_size=20),
                      st.builds(lambda kind, value: f"{kind}:{value}",
                                st.sampled_from(["center", "outpaint", "random", "box", "strokes", "hybrid", "mage"]),
                                st.one_of(st.floats(allow_nan=True), st.text(max_size=5)))),
       cell=st.sampled_from([1, 4, 8]), seed=st.integers(0, 1000))
def test_mask_specs_parse_or_refuse_and_always_leave_hole_and_context(spec, cell, seed):
    try:
        parse_task(spec)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    hole = make_mask(spec, 3, 32, cell, torch.Generator().manual_seed(seed))
    assert hole.dtype == torch.bool and hole.shape == (3, 1, 32, 32)
    per_image = hole.flatten(1).sum(1)
    assert (per_image > 0).all() and (per_image < 32 * 32).all()


@pytest.fixture(scope="module")
def folder_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    for name in ("a", "b"):
        (root / name).mkdir()
        for i in range(3):
            Image.new("L", (20, 20), 40 * i).save(root / name / f"{i}.png")
    return load_dataset(f"imagefolder:{root}", "train", 16, 1, test_fraction=0.0)


@settings(max_examples=200, deadline=None)
@given(lines=st.lists(st.one_of(st.text(max_size=15), st.sampled_from(["a/0.png", "b/2.png", "# note", ""])),
                      max_size=6))
def test_forget_lists_name_training_images_or_are_refused(tmp_path_factory, folder_dataset, lines):
    listing = tmp_path_factory.mktemp("list") / "forget.txt"
    listing.write_text("\n".join(line.replace("\r", "") for line in lines))
    try:
        indices = read_forget_list(listing, folder_dataset)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    assert indices == sorted(set(indices)) and all(0 <= i < len(folder_dataset) for i in indices)


def _write(path, kind):
    if kind == "zero-byte":
        path.write_bytes(b"")
    elif kind == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "not an image":
        path.write_text("hello, I am text")


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "not an image"])
def test_a_damaged_image_is_named_before_anything_is_written(tmp_path, capsys, kind):
    for name in ("a", "b"):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(4):
            Image.new("L", (28, 28), 30 * i).save(tmp_path / "data" / name / f"{i}.png")
    _write(tmp_path / "data" / "b" / "9.png", kind)
    code = main(["unlearn", "--model", "bundled", "--dataset", f"imagefolder:{tmp_path / 'data'}", "--forget-classes",
                 "a", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "9.png" in err[0]
    assert not (tmp_path / "out").exists()


def test_sixteen_bit_and_palette_images_keep_their_values(tmp_path):
    (tmp_path / "c").mkdir()
    grey = np.full((28, 28), 40000, dtype=np.uint16)  # about 61% of full scale
    Image.fromarray(grey).save(tmp_path / "c" / "deep.png")
    palette = Image.new("P", (28, 28), 1)
    palette.putpalette([0, 0, 0, 128, 128, 128] + [0] * 762)
    palette.save(tmp_path / "c" / "palette.png")
    data = load_dataset(f"imagefolder:{tmp_path}", "train", 28, 1, test_fraction=0.0)
    values = {data.ids[i]: data[i][0] for i in range(len(data))}
    assert abs(values["c/deep.png"].mean().item() - 40000 / 65535) < 0.01
    assert abs(values["c/palette.png"].mean().item() - 128 / 255) < 0.01


# -- every command's parser, driven with generated argument lists --------------------------------
BAD_VALUES = ["nan", "inf", "-inf", "-1", "0", "", ",", " , ", "abc", "1e400", "-0.5", "{", "[1]", "1", "none",
              "/nonexistent/place"]
# Settings that keep a run that is accepted short; generated flags come after them and win.
FAST = {"train": ["--steps", "1", "--image-size", "16", "--batch-size", "2", "--tokenizer-steps", "1"],
        "train-classifier": ["--steps", "1", "--image-size", "16", "--batch-size", "2"],
        "unlearn": ["--steps", "1", "--batch-size", "2", "--retain-limit", "8", "--val-images", "2"],
        "evaluate": ["--eval-per-class", "2", "--classifier", "none"],
        "memorise": ["--steps", "1", "--batch-size", "2"],
        "relearn-probe": ["--steps", "1", "--probe-images", "2", "--eval-images", "2", "--eval-every", "1"],
        "demo": ["--steps", "1", "--batch-size", "2", "--eval-per-class", "2", "--classifier", "none", "--relearn",
                 "none"],
        "compare": ["--steps", "1", "--batch-size", "2", "--eval-per-class", "2", "--methods", "i2i",
                    "--classifier", "none", "--relearn", "none"],
        "sweep": ["--steps", "1", "--batch-size", "2", "--eval-per-class", "2", "--alphas", "0.1",
                  "--classifier", "none"]}
SLOW_OR_OUTSIDE = {"--out", "--compile", "--help", "-h", "--model", "--dataset", "--retrained", "--original",
                   "--features", "--tokenizer", "--state-every", "--resume"}


def _command_flags():
    import argparse

    from i2i_unlearn.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    flags = {}
    for name, parser in commands.items():
        flags[name] = [(option, action.nargs != 0) for action in parser._actions for option in action.option_strings
                       if option.startswith("--") and option not in SLOW_OR_OUTSIDE]
    return {name: options for name, options in flags.items() if options}


FLAGS = _command_flags()
EXTERNAL_FLAGS = {"--local-dir"}  # flags of other programs that our advice names (hf download)


def _options(command: str) -> set[str]:
    import argparse

    from i2i_unlearn.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {option for action in commands[command]._actions for option in action.option_strings}


def _flags_named(text: str) -> set[str]:
    import re

    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def test_help_says_what_every_flag_does_and_its_default():
    import argparse

    from i2i_unlearn.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in commands.items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, (name, action.option_strings)
            if action.default is not None and action.nargs != 0:  # what --help prints for the flag
                assert "default" in formatter._get_help_string(action), (name, action.option_strings)
        assert "(default: 0)" in " ".join(parser.format_help().split()) or name in ("report", "verify"), name


def test_every_flag_our_messages_name_exists():
    """Advice must not send a user to a flag no command has (a renamed or dropped one)."""
    import ast
    import pathlib

    import i2i_unlearn

    every = set().union(*(_options(command) for command in FLAGS)) | EXTERNAL_FLAGS
    unknown = {}
    for path in pathlib.Path(i2i_unlearn.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                for flag in _flags_named(node.value) - every:
                    unknown.setdefault(flag, path.name)
    assert not unknown, unknown


@st.composite
def _argument_lists(draw):
    command = draw(st.sampled_from(sorted(FLAGS)))
    pairs = draw(st.lists(st.tuples(st.sampled_from(FLAGS[command]), st.sampled_from(BAD_VALUES)),
                          min_size=1, max_size=3))
    extra = []
    for (flag, takes_value), value in pairs:
        extra += [flag, value] if takes_value else [flag]
    return command, extra


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_argument_lists())
def test_every_command_runs_or_refuses_in_one_line_and_writes_nothing(tiny_checkpoint, tmp_path_factory, capsys,
                                                                     case):
    command, extra = case
    root = tmp_path_factory.mktemp("cli")
    out = root / "out"
    required = {"report": [str(root / "no-run")], "verify": [str(root / "no-certificate")]}.get(command)
    if required is None:
        required = ["--out", str(out)]
        if command not in ("train", "train-classifier", "demo"):
            required += ["--model", str(tiny_checkpoint)]
        if command == "memorise":
            listing = tmp_path_factory.mktemp("list") / "private.txt"
            listing.write_text("train/00001\n")
            required += ["--images", str(listing)]
        elif command not in ("train", "train-classifier"):
            required += ["--forget-classes", "Bag"]
    try:
        code = main([command, *required, *FAST.get(command, []), *extra])
    except SystemExit as exc:  # argparse refuses while parsing
        code = exc.code
    err = capsys.readouterr().err
    if code == 0:
        return
    lines = err.strip().splitlines()
    assert code == 2, (command, extra, err[-1500:])
    assert len(lines) == 1 and lines[0].startswith("i2i-unlearn: error:"), (command, extra, err[-1500:])
    assert not any(root.iterdir()), (command, extra, sorted(root.rglob("*")))
    # the advice names only flags this command has (or another program's, quoted as such)
    assert _flags_named(lines[0]) <= _options(command) | EXTERNAL_FLAGS, (command, lines[0])
