"""Interrupt and resume: a run killed hard (SIGKILL) mid-way and resumed ends with the same
weights, bit for bit, as a run never interrupted (CPU, same seed); Ctrl-C saves a state too."""

import os
import signal
import subprocess
import sys
import time

import pytest

from i2i_unlearn.cli import main

FLAGS = ["--forget-classes", "Trouser", "--retain-limit", "200", "--steps", "300", "--batch-size", "8",
         "--state-every", "10", "--seed", "4"]


def _command(checkpoint, out, *extra):
    return [sys.executable, "-m", "i2i_unlearn.cli", "unlearn", "--model", str(checkpoint), "--out", str(out),
            *FLAGS, *extra]


def _weights(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*.safetensors"))}


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_run_stopped_and_resumed_matches_an_uninterrupted_one(tiny_checkpoint, tmp_path, how):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run(_command(tiny_checkpoint, tmp_path / "whole"), env=env, capture_output=True).returncode == 0
    process = subprocess.Popen(_command(tiny_checkpoint, tmp_path / "cut"), env=env, stderr=subprocess.PIPE)
    state = tmp_path / "cut.partial" / "state.pt"
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert state.exists(), process.stderr.read().decode()[-2000:]
    process.send_signal(how)
    code = process.wait(timeout=120)
    assert code == (-signal.SIGKILL if how == signal.SIGKILL else 130)
    assert not (tmp_path / "cut").exists()
    # without --resume the leftover state is not silently thrown away
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "cut"), *FLAGS]) == 2
    assert subprocess.run(_command(tiny_checkpoint, tmp_path / "cut", "--resume"), env=env,
                          capture_output=True).returncode == 0
    assert _weights(tmp_path / "cut") == _weights(tmp_path / "whole")
    assert not (tmp_path / "cut.partial").exists()


def test_resume_without_a_saved_state_is_refused(tiny_checkpoint, tmp_path, capsys):
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "x"), *FLAGS, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
