"""The lock file: every pin has hashes, the README names the tested versions, and the environment matches it."""

import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> dict:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=\S)", text.strip())
    pins = {}
    for entry in entries:
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", entry)
        if match:
            assert "--hash=sha256:" in entry, f"{match.group(1)} is pinned without a hash"
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_the_lock_pins_every_dependency_with_hashes():
    pins = _pins()
    for name in ("transformers", "diffusers", "accelerate", "torchmetrics", "safetensors", "pytest"):
        assert name in pins
    assert "torch" not in pins  # the CPU build is installed first, by the Makefile


def test_the_readme_names_the_locked_versions():
    readme = (ROOT / "README.md").read_text()
    for name in ("transformers", "diffusers", "accelerate", "torchmetrics", "huggingface-hub"):
        shown = name.replace("-", "_")
        assert f"{shown} {_pins()[name]}" in readme, f"the README's tested {shown} is not the lock's"


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the lock is for Python 3.11; pyproject's ranges here")
def test_the_environment_is_the_locked_one():
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a platform-only package (the lock is for Linux x86-64)
        assert installed == version, f"{name} {installed} is installed, the lock says {version}"
