"""Runs as config files: `--config FILE` on every command, flags overriding it, records that replay."""

import json

import pytest
import yaml
from safetensors.torch import load_file

from i2i_unlearn import cli
from i2i_unlearn.cli import main


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("i2i-unlearn: error:")
    return err[0]


def _weights(folder):
    return load_file(str(next(folder.glob("*.safetensors"))))


def test_a_record_replays_its_run_to_the_same_weights(tiny_checkpoint, tmp_path, monkeypatch):
    first = tmp_path / "first"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(first), "--forget-classes", "Trouser",
                 "--retain-limit", "64", "--steps", "6", "--batch-size", "4", "--fixed-alpha", "--seed", "5",
                 "--lr", "0.0007"]) == 0
    record = json.loads((first / "unlearn_record.json").read_text())
    assert record["invocation"]["command"] == "unlearn"
    assert record["invocation"]["flags"]["lr"] == 0.0007 and "out" not in record["invocation"]["flags"]
    monkeypatch.chdir(tmp_path)  # replayed from elsewhere: the record's paths are absolute
    again = tmp_path / "again"
    assert main(["unlearn", "--config", str(first / "unlearn_record.json"), "--out", str(again)]) == 0
    replayed = json.loads((again / "unlearn_record.json").read_text())
    assert replayed["invocation"] == record["invocation"]
    assert replayed["config"] == record["config"] and replayed["data"] == record["data"]
    one, two = _weights(first), _weights(again)
    assert one.keys() == two.keys()
    assert all(one[name].equal(two[name]) for name in one)  # bit for bit
    assert any(not one[name].equal(original) for name, original in _weights(tiny_checkpoint).items())


def test_flags_on_the_command_line_override_the_file(tiny_checkpoint, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"model": str(tiny_checkpoint), "forget-classes": ["Trouser"],
                                      "retain_limit": 32, "steps": 50, "batch_size": 4, "fixed-alpha": True,
                                      "seed": 9, "mask": None}))
    out = tmp_path / "out"
    assert main(["unlearn", "--config", str(config), "--steps", "2", "--out", str(out)]) == 0
    record = json.loads((out / "unlearn_record.json").read_text())
    assert record["config"]["steps"] == 2 and record["steps_run"] == 2  # the command line's
    assert record["config"]["seed"] == 9 and record["config"]["retain_budget"] is None  # the file's
    assert record["data"]["forget_classes"] == ["Trouser"]


def _command_parsers():
    parser = cli.build_parser()
    return {name: cli._command_parser(parser, name) for name in cli.COMMANDS}


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_takes_every_flag_from_a_config(command, tmp_path):
    """Each command's flags, written to a JSON file at values other than their defaults, parse to those values."""
    sub = _command_parsers()[command]
    wanted, argv = {}, [command]
    for action in sub._actions:
        if not action.option_strings or action.dest in ("help", "config"):
            continue
        if action.nargs == 0:
            wanted[action.dest] = True
        elif action.choices:
            wanted[action.dest] = list(action.choices)[-1]
        elif getattr(action.type, "__name__", None) == "int":
            wanted[action.dest] = 7
        elif getattr(action.type, "__name__", None) == "float":
            wanted[action.dest] = 0.25
        elif action.dest == "model_config":
            wanted[action.dest] = {"depth": 2}
        elif action.type is cli._csv or isinstance(action.default, list):
            wanted[action.dest] = ["a", "b"]
        else:
            wanted[action.dest] = "x"
    argv += [f"positional-{index}" for index, action in enumerate(sub._actions) if not action.option_strings]
    config = tmp_path / "config.json"
    config.write_text(json.dumps(wanted))
    parser = cli.build_parser()
    args = parser.parse_args(cli._with_config(parser, [*argv, "--config", str(config)]))
    assert {name: getattr(args, name) for name in wanted} == wanted


@pytest.mark.parametrize("content, suffix, message", [
    ({"bogus": 1}, ".json", "unknown key 'bogus'"),
    ({"steps": "ten"}, ".json", "'steps' must be a whole number, not 'ten'"),
    ({"steps": 2.5}, ".json", "'steps' must be a whole number"),
    ({"lr": [1, 2]}, ".json", "'lr' must be a number"),
    ({"lr": True}, ".json", "'lr' must be a number"),
    ({"cpu": "yes please"}, ".json", "'cpu' is a switch"),
    ({"method": "forget_harder"}, ".json", "'method' must be one of"),
    ({"forget_classes": [["Bag"]]}, ".json", "'forget_classes' must be a list of names"),
    ([1, 2], ".json", "must hold a mapping"),
    ("{not json", ".json", "is not valid JSON"),
    ("steps: [unclosed", ".yaml", "is not valid YAML"),
    ({"invocation": {"command": "train", "flags": {}}, "kind": "train"}, ".json", "record of an 'train' run"),
])
def test_a_bad_config_is_one_line_naming_the_key(tiny_checkpoint, tmp_path, capsys, content, suffix, message):
    config = tmp_path / f"config{suffix}"
    config.write_text(content if isinstance(content, str) else json.dumps(content))
    out = tmp_path / "out"
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--forget-classes", "Bag", "--config", str(config),
                 "--out", str(out)]) == 2
    line = _error_line(capsys)
    assert message in line and str(config) in line
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["unlearn", "--config"], "--config needs a file"),
    (["unlearn", "--config", "missing.yaml"], "no such file"),
    (["unlearn", "--config", "a.yaml", "--config", "b.yaml"], "--config is given twice"),
    (["--config", "a.yaml"], "--config goes with a command"),
])
def test_a_bad_config_flag_is_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text("steps: 1\n")
    assert main(argv) == 2
    assert message in _error_line(capsys)


def test_a_positional_argument_is_not_a_config_key(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"run_dirs": ["x"]}))
    assert main(["report", "y", "--config", str(config)]) == 2
    assert "'run_dirs'" in _error_line(capsys)


def test_a_record_keeps_paths_absolute_and_names_as_they_are(tmp_path, monkeypatch):
    from i2i_unlearn.runconfig import invocation

    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "mae").mkdir()  # a folder named like a bundled model's name does not change `bundled:mae`
    (tmp_path / "forget.txt").write_text("a\n")
    parser = cli.build_parser()
    args = parser.parse_args(["unlearn", "--model", "bundled:mae", "--out", "x", "--dataset", "imagefolder:photos",
                              "--forget-list", "forget.txt", "--method", "max_loss"])
    flags = invocation(args)["flags"]
    assert flags["model"] == "bundled:mae" and flags["method"] == "max_loss"
    assert flags["dataset"] == f"imagefolder:{tmp_path / 'photos'}"
    assert flags["forget_list"] == str(tmp_path / "forget.txt")
