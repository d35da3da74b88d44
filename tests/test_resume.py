"""Interrupt and resume: a run killed hard (SIGKILL) mid-way and resumed ends with the same
weights, bit for bit, as a run never interrupted (CPU, same seed); Ctrl-C and SIGTERM save a
state too (every family). An unwritable --out fails before the first step; what a killed save
left is cleaned up by the next attempt."""

import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from i2i_unlearn.cli import main

FLAGS = ["--forget-classes", "Trouser", "--retain-limit", "200", "--steps", "120", "--batch-size", "8",
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


def test_sigterm_saves_the_state_and_resume_matches_an_uninterrupted_run(family_checkpoint, tmp_path, capsys):
    # what a cluster scheduler or a container runtime sends before it kills: handled like Ctrl-C
    # (in this process, sent by a thread once the first state is saved: no interpreter start per run)
    import threading

    flags = ["--steps", "30", "--fixed-alpha", "--state-every", "5"]

    def run(out, *extra):
        return main(["unlearn", "--model", str(family_checkpoint), "--out", str(out), *FLAGS, *flags, *extra])

    assert run(tmp_path / "whole") == 0
    state = tmp_path / "cut.partial" / "state.pt"

    def terminate():
        deadline = time.time() + 300
        while not state.exists() and time.time() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    # outside the run, a SIGTERM that came late is ignored (and the test fails) rather than ending pytest
    outside = signal.signal(signal.SIGTERM, lambda *_: None)
    sender = threading.Thread(target=terminate)
    try:
        sender.start()
        capsys.readouterr()
        code = run(tmp_path / "cut")
        sender.join()
    finally:
        signal.signal(signal.SIGTERM, outside)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 128 + signal.SIGTERM and "stopped by SIGTERM" in last and "--resume" in last, last
    assert not (tmp_path / "cut").exists()
    assert run(tmp_path / "cut", "--resume") == 0
    assert _weights(tmp_path / "cut") == _weights(tmp_path / "whole")


def test_an_unwritable_out_fails_before_the_first_step(tiny_checkpoint, tmp_path, capsys):
    if os.geteuid() != 0:
        place = tmp_path / "read-only"
        place.mkdir()
        place.chmod(0o555)
    else:  # permissions do not stop root; a place the kernel refuses does
        place = next((Path(p) for p in ("/sys", "/proc") if not os.access(p, os.W_OK) or not _can_mkdir(p)), None)
        if place is None:
            pytest.skip("no unwritable place to try on this machine")
    started = time.perf_counter()
    for command in (["unlearn", "--model", str(tiny_checkpoint), *FLAGS],
                    ["train", "--image-size", "16", "--steps", "5"]):
        assert main([*command, "--out", str(place / "runs" / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "pick a writable place" in err[0], err
    assert time.perf_counter() - started < 60  # refused at once, not after 300 steps


def _can_mkdir(place):
    try:
        os.rmdir(tempfile.mkdtemp(dir=place))
    except OSError:
        return False
    return True


def test_what_a_killed_save_left_is_removed_by_the_next_attempt(tiny_checkpoint, tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that has ended
    leftover = tmp_path / f".x.tmp-{platform.node()}-{dead.pid}-abcd1234"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    live = tmp_path / f".x.tmp-{platform.node()}-{os.getpid()}-efgh5678"  # a run still going: left alone
    live.mkdir()
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "x"), *FLAGS[:-4],
                 "--steps", "2", "--fixed-alpha"]) == 0
    assert not leftover.exists() and live.is_dir() and (tmp_path / "x" / "certificate.json").is_file()
    assert f"removed {leftover}" in capsys.readouterr().err


def test_ctrl_c_while_starting_is_one_line(tmp_path):
    # SIGINT a moment after start: during the imports, the parsing or the loading, never a traceback
    # (the first tens of milliseconds are the interpreter's own start, before any code of ours runs)
    for delay in (0.5, 1.5, 3.0):
        process = subprocess.Popen([sys.executable, "-m", "i2i_unlearn.cli", "evaluate", "--model", "bundled",
                                    "--forget-classes", "Trouser", "--out", str(tmp_path / "e")],
                                   stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        err = process.communicate(timeout=120)[1].decode()
        assert "Traceback" not in err and process.returncode == 130, err[-2000:]
        assert err.strip().splitlines()[-1] == "i2i-unlearn: interrupted", err[-500:]


def test_resume_without_a_saved_state_is_refused(tiny_checkpoint, tmp_path, capsys):
    assert main(["unlearn", "--model", str(tiny_checkpoint), "--out", str(tmp_path / "x"), *FLAGS, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
