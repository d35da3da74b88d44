"""Runs as config files: `--config FILE` on every command, and records that replay.

A config file is a YAML or JSON mapping of flag names (`forget-alpha` or `forget_alpha`) to
values; flags given on the command line override it. A record a run wrote (unlearn_record.json,
train_record.json, metrics.json, ...) is a config too: its `invocation` holds the command and
every flag's value, so `i2i-unlearn unlearn --config RUN/unlearn_record.json --out NEW` runs the
same thing again.

Each value is checked against the flag's own type and choices here, so that a bad key or value
is named with the file it came from; the flags are then handed to argparse as if typed.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .errors import UserError


# Flags a replay must not copy: where the run wrote, whether it resumed, and the config itself.
NOT_REPLAYED = ("command", "config", "out", "resume")
# Flags that name files (or specs `kind:PATH`): recorded as absolute paths, so a replay from another folder
# finds them.
PATH_FLAGS = ("model", "original", "retrained", "forget_list", "classifier", "tokenizer", "sign_key", "compare",
              "log_dir")
SPEC_FLAGS = ("dataset", "retain_source", "features")


def invocation(args: argparse.Namespace) -> dict:
    """What a record keeps to replay a run: the command and every flag's value (files made absolute)."""
    flags = {}
    for name, value in vars(args).items():
        if name in NOT_REPLAYED or value is None:
            continue
        if isinstance(value, str) and name in PATH_FLAGS + SPEC_FLAGS:
            value = _absolute(value, spec=name in SPEC_FLAGS)
        flags[name] = value
    return {"command": args.command, "flags": flags}


def _absolute(value: str, spec: bool) -> str:
    """`value` made absolute when it is an existing path (or, for a `spec`, the PATH of `kind:PATH` is)."""
    if Path(value).exists():
        return str(Path(value).resolve())
    kind, colon, path = value.partition(":")
    if spec and colon and path and Path(path).exists():
        return f"{kind}:{Path(path).resolve()}"
    return value


def split_config(argv: list[str]) -> tuple[list[str], str | None]:
    """`argv` without its `--config FILE`, and FILE (None when not given)."""
    rest, path = [], None
    index = 0
    while index < len(argv):
        token = argv[index]
        if token == "--config" or token.startswith("--config="):
            if path is not None:
                raise UserError("--config is given twice; pass one config file (flags override it)")
            if token == "--config":
                if index + 1 >= len(argv):
                    raise UserError("--config needs a file: --config run.yaml")
                path = argv[index + 1]
                index += 2
                continue
            path = token.split("=", 1)[1]
        else:
            rest.append(token)
        index += 1
    return rest, path


def read_config(path: str, command: str) -> dict:
    """The flags a config file (or a run's record) sets for `command`, as {dest: value}."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--config {path}: no such file; give a YAML or JSON file of flag names and values")
    text = file.read_text(errors="replace")
    try:
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError) as exc:
        raise UserError(f"--config {path} is not valid JSON ({exc}); fix the file or write it as YAML") from None
    except Exception as exc:  # yaml.YAMLError and its kin: the file's own syntax
        where = str(exc).splitlines()
        raise UserError(f"--config {path} is not valid YAML ({' '.join(line.strip() for line in where)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--config {path} must hold a mapping of flag names to values, not a {type(data).__name__}")
    if "invocation" in data:  # a record a run wrote
        recorded = data["invocation"]
        if not isinstance(recorded, dict) or not isinstance(recorded.get("flags"), dict):
            raise UserError(f"--config {path}: its 'invocation' is not a command and flags; give a record that a "
                            "run of this version wrote, or a plain config file")
        if recorded.get("command") != command:
            raise UserError(f"--config {path} is the record of an '{recorded.get('command')}' run; replay it with "
                            f"i2i-unlearn {recorded.get('command')} --config {path}")
        return dict(recorded["flags"])
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def config_tokens(parser: argparse.ArgumentParser, flags: dict, path: str) -> list[str]:
    """The command-line tokens that set `flags` in `parser` (one command's), each value checked first."""
    actions = {action.dest: action for action in parser._actions if action.option_strings}
    tokens = []
    for name, value in flags.items():
        if name in ("help", "config") or name not in actions:
            hint = "it is given on the command line" if any(a.dest == name for a in parser._actions) \
                else f"see '{parser.prog} --help' for the flags"
            raise UserError(f"--config {path}: unknown key '{name}' for {parser.prog}; {hint}")
        action = actions[name]
        flag = action.option_strings[0]
        if value is None:
            continue  # the flag's default
        if action.nargs == 0:  # a switch (--cpu)
            if not isinstance(value, bool):
                raise UserError(f"--config {path}: '{name}' is a switch; set it to true or false, not {value!r}")
            if value:
                tokens.append(flag)
            continue
        token = _token(name, value, action, path)
        try:
            converted = action.type(token) if callable(action.type) else token
        except (argparse.ArgumentTypeError, TypeError, ValueError, UserError) as exc:
            kind = getattr(action.type, "__name__", "value")
            reason = {"int": "a whole number", "float": "a number"}.get(kind, str(exc) or "a valid value")
            raise UserError(f"--config {path}: '{name}' must be {reason}, not {value!r}") from None
        if action.choices is not None and converted not in action.choices:
            choices = ", ".join(map(str, action.choices))
            raise UserError(f"--config {path}: '{name}' must be one of {choices}, not {value!r}")
        tokens += [flag, token]
    return tokens


def _token(name: str, value, action: argparse.Action, path: str) -> str:
    """A config value as the text one would type after its flag."""
    kind = getattr(action.type, "__name__", None)
    if isinstance(value, bool) or (kind in ("int", "float") and not isinstance(value, (int, float, str))):
        raise UserError(f"--config {path}: '{name}' must be a number, not {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"--config {path}: '{name}' must be a finite number, not {value!r}")
    if isinstance(value, list):  # a comma-separated list flag (--forget-classes)
        if not all(isinstance(item, (str, int, float)) and not isinstance(item, bool) for item in value):
            raise UserError(f"--config {path}: '{name}' must be a list of names, not {value!r}")
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):  # a JSON-valued flag (--model-config)
        return json.dumps(value)
    return str(value) if not isinstance(value, float) else repr(value)
