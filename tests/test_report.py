"""`i2i-unlearn report`: one self-contained HTML page from hand-made run folders, checked as text and in Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from i2i_unlearn.cli import main
from i2i_unlearn.errors import UserError
from i2i_unlearn.report import fmt, metric_names, write_report

MAGENTA = (255, 0, 255)
BLOCK = (8, 4, 56, 28)  # left, top, right, bottom of the magenta block in samples.png: 48 x 24 pixels
VERSIONS = {"i2i_unlearn": "0.1.0", "python": "3.11.7", "torch": "2.13.0+cpu"}


def _sets(scale: float, images: int = 100, **extra) -> dict:
    return {"retain": {"hole_mse": 0.0334847 * scale, "psnr": 15.9006, "fid": 71.9304 * scale, "cosine": 0.76714,
                       "images": images * 4, "is": 2.54805, **extra},
            "forget": {"hole_mse": 0.0297588 * scale, "psnr": 16.3185, "fid": 80.3965 * scale, "cosine": 0.80717,
                       "images": images, "is": 2.38850, **extra}}


def _png(path: Path, colour=MAGENTA) -> bytes:
    image = Image.new("RGB", (64, 32), "white")
    image.paste(colour, BLOCK)
    image.save(path)
    return path.read_bytes()


def _write(folder: Path, name: str, payload: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / name).write_text(json.dumps(payload, indent=2))
    return folder


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    """One folder of each kind, shaped like what demo / evaluate / compare / sweep write."""
    demo = _write(tmp_path / "demo", "metrics.json", {
        "model": "mae", "method": "i2i", "forget_classes": ["Trouser", "Bag"], "task": "center",
        "unlearn_seconds": 113.11, "before": _sets(1.0), "after": _sets(6.0),
        "retrained": _sets(5.0, ssim_shift=0.125), "membership_inference": {"original": 0.7312, "unlearned": 0.5123},
        "data": {"dataset": "fashion-mnist", "forget_classes": ["Trouser", "Bag"]},
        "unlearn_config": {"method": "i2i", "steps": 300}, "versions": VERSIONS,
        "finished": "2026-01-02T03:04:05+00:00"})
    _png(demo / "samples.png")
    _png(demo / "tsne.png", (0, 128, 128))
    _png(demo / "extra plot.png", (0, 0, 200))
    evaluate = _write(tmp_path / "evaluate", "metrics.json", {
        "kind": "evaluate", "model": "bundled", "task": "outpaint", "features": "efficientnet-lite0",
        "metrics": {"retain": {"hole_mse": 0.0123456, "fid": 12.3456}, "forget": {"hole_mse": 0.0654321}},
        "data": {"forget_classes": ["<b>Bag</b>"]}, "versions": VERSIONS,
        "started": "2026-01-02T03:00:00+00:00", "finished": "2026-01-02T03:01:00+00:00", "seconds": 60.0})
    _png(evaluate / "samples.png")
    row = {"metrics": _sets(1.0), "seconds": None, "to_retrained": {"hole_mse": 0.0111111, "cosine": 0.913579}}
    compare = _write(tmp_path / "compare", "compare.json", {
        "kind": "compare",
        "config": {"model": "bundled", "retrained": "ckpt/retrained", "methods": ["i2i", "max_loss"],
                   "task": "center"},
        "results": {"original": row, "i2i": {**row, "metrics": _sets(3.0), "seconds": 41.5},
                    "max_loss": {"metrics": _sets(9.0), "seconds": 39.25},
                    "retrained": {**row, "metrics": _sets(2.0), "seconds": 6000.0,
                                  "to_retrained": {"hole_mse": 0.0, "cosine": 1.0}}}})
    _png(compare / "samples.png")
    (compare / "compare.md").write_text("| model |\n")
    sweep = _write(tmp_path / "sweep", "sweep.json", {
        "kind": "sweep", "config": {"alphas": [1.0, 0.05, 0.2], "unlearn": {"method": "i2i"}},
        "points": {"1.0": _sets(7.0), "0.05": _sets(1.5), "0.2": {"retain": {"fid": 77.7777}}}})
    _png(sweep / "tradeoff.png", (200, 100, 0))
    return {"demo": demo, "evaluate": evaluate, "compare": compare, "sweep": sweep}


class _TagChecker(HTMLParser):
    """Collects tags and attributes; fails on a closing tag that does not match the open one."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack, self.attributes, self.tags = [], [], set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += attrs
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def test_report_holds_every_table_and_embeds_every_image(runs, tmp_path):
    out = write_report(list(runs.values()), tmp_path / "out" / "report.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for kind in runs:
        assert f'<span class="kind">{kind}</span>' in page
    # demo: before / after / retrained / ratio, an extra metric, membership inference, the header
    for text in ("0.03348", "0.2009", "0.1674", "6×", "ssim_shift", "0.125", "0.7312", "0.5123", "Trouser, Bag",
                 "113.1 s", "torch 2.13.0+cpu", "2026-01-02T03:04:05+00:00", "<th>retrained</th>"):
        assert text in page, text
    # evaluate: a table per set, the missing forget FID shown as a dash, class names escaped
    assert "0.01235" in page and "12.35" in page and "0.06543" in page
    assert "&lt;b&gt;Bag&lt;/b&gt;" in page and "<b>Bag</b>" not in page
    # compare: one row per model, distance to retrained and seconds
    compare = page[page.index('<span class="kind">compare</span>'):page.index('<span class="kind">sweep</span>')]
    compare = compare[compare.index("<details>"):]  # the tables, below the verdict
    assert [re.sub("<.*?>", "", row) for row in re.findall(r'<td class="name">.*?</td>', compare)] == [
        "original", "i2i", "max_loss", "retrained"]
    for text in ("forget: hole MSE to retrained", "0.01111", "0.9136", "41.5", "39.25", "6000", "0.3014"):
        assert text in compare, text
    # sweep: alphas in numeric order; a point without forget metrics still renders
    sweep = page[page.index('<span class="kind">sweep</span>'):]
    assert sweep.index(">0.05<") < sweep.index(">0.2<") < sweep.index(">1.0<")
    assert "77.78" in sweep
    # every PNG inline, captioned; nothing fetched from anywhere
    for folder in runs.values():
        for png in folder.glob("*.png"):
            assert "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode() in page
            assert f"<figcaption>{png.name}</figcaption>" in page
    assert page.count("<img ") == 6
    checker = _TagChecker()
    checker.feed(page)
    assert checker.stack == []
    sources = [value for name, value in checker.attributes if name in ("src", "href")]
    assert sources and all(v.startswith("data:image/png;base64,") or v.startswith("#") for v in sources)
    assert not re.search(r"https?://|file:|url\(|@import", page)
    assert not checker.tags & {"script", "link", "iframe", "object"}


def test_numbers_and_metric_order():
    assert [fmt(v) for v in (0.0334847, 71.93040826, 400, 113.11, 6000.0, None, float("nan"), 1e-7)] == [
        "0.03348", "71.93", "400", "113.1", "6000", "–", "nan", "1e-07"]
    assert fmt("<x>") == "&lt;x&gt;"
    assert metric_names({"zeta": 1.0, "images": 3, "fid": 2.0, "note": "text", "flag": True},
                        {"alpha": 0.5, "hole_mse": 0.1}) == ["hole_mse", "fid", "images", "alpha", "zeta"]


def _bad_folder(tmp_path: Path, case: str) -> Path:
    folder = tmp_path / "run"
    if case == "missing":
        return folder
    folder.mkdir()
    if case == "empty":
        _png(folder / "samples.png")
    elif case == "broken json":
        (folder / "metrics.json").write_text('{"before": {"retain": ')
    elif case == "not an object":
        (folder / "sweep.json").write_text("[1, 2]")
    elif case == "unknown shape":
        (folder / "metrics.json").write_text('{"model": "mae"}')
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"), ("empty", "holds none of"), ("broken json", "cannot read"),
    ("not an object", "not a JSON object"), ("unknown shape", "neither"),
])
def test_bad_run_folders_are_user_errors(tmp_path, capsys, case, message):
    folder = _bad_folder(tmp_path, case)
    out = tmp_path / "report.html"
    with pytest.raises(UserError, match=message):
        write_report([folder], out)
    assert main(["report", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("i2i-unlearn: error:") and message in err[0]
    assert not out.exists()


def test_existing_out_file_is_never_overwritten(runs, tmp_path, capsys):
    out = tmp_path / "mine.html"
    out.write_bytes(b"my own results\n")
    with pytest.raises(UserError, match="pass a new --out"):
        write_report([runs["demo"]], out)
    assert main(["report", str(runs["demo"]), "--out", str(out)]) == 2
    assert "pass a new --out" in capsys.readouterr().err
    assert out.read_bytes() == b"my own results\n"
    # The default --out is report.html in the first folder; a second run refuses to replace it.
    assert main(["report", str(runs["demo"]), str(runs["sweep"])]) == 0
    default = runs["demo"] / "report.html"
    assert capsys.readouterr().out.strip() == str(default)
    written = default.read_bytes()
    assert main(["report", str(runs["demo"])]) == 2
    assert default.read_bytes() == written


# --- in a real browser -------------------------------------------------------------------------------------------

# Chromium with --enable-logging=stderr prints every console message (log, warning, error, uncaught exception)
# as one line: [pid:tid:MMDD/hhmmss.micros:INFO:CONSOLE:1] "Uncaught Error: x", source: file:///...html (1)
CONSOLE = re.compile(r":CONSOLE(:\d+)?\]|Uncaught")


def _chromium(page: Path, screenshot: Path, profile: Path) -> str:
    """Render `page` headless to `screenshot`; return Chromium's stderr."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium not found; install the Debian package 'chromium' (scripts/setup-data.sh does)")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
               "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run", f"--user-data-dir={profile}",
               f"--screenshot={screenshot}", "--window-size=1200,2000", page.resolve().as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert screenshot.is_file(), result.stderr[-2000:]
    return result.stderr


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE.search(line)]


def test_console_check_catches_a_failing_script(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><script>throw new Error("deliberate");</script></body></html>')
    messages = console_messages(_chromium(page, tmp_path / "broken.png", tmp_path / "profile"))
    assert any("Uncaught Error: deliberate" in line for line in messages), messages


def test_report_renders_in_chromium(runs, tmp_path):
    out = write_report([runs["demo"]], tmp_path / "report.html")
    stderr = _chromium(out, tmp_path / "shot.png", tmp_path / "profile")
    assert console_messages(stderr) == []
    pixels = np.asarray(Image.open(tmp_path / "shot.png").convert("RGB")).astype(int)
    magenta = (np.abs(pixels - MAGENTA) <= 8).all(axis=-1)
    rows, columns = np.nonzero(magenta)
    # samples.png's block drawn once, whole and unscaled: 48 x 24 magenta pixels in one rectangle
    assert magenta.sum() >= 0.95 * 48 * 24, magenta.sum()
    assert (columns.max() - columns.min() + 1, rows.max() - rows.min() + 1) == (48, 24)


def _verdict_rows(page: str, section: str) -> list[list[str]]:
    """The verdict table's rows (cells as text) of the section whose header names `section`."""
    import re

    part = page.split(f'<span class="kind">{section}</span>', 1)[1].split("</section>", 1)[0]
    verdict = part.split('<div class="verdict">', 1)[1].split("</div>", 1)[0]
    assert part.index('<div class="verdict">') < part.index("<figure>") < part.index("<details>")  # shown first
    rows = re.findall(r"<tr>(.*?)</tr>", verdict, flags=re.S)[1:]
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in rows]


def test_each_run_opens_with_its_verdict_then_its_samples(runs, tmp_path):
    metrics = json.loads((runs["demo"] / "metrics.json").read_text())
    metrics["relearn"] = {"steps_to_relearn": {"unlearned": 15, "original": 0, "retrained": None},
                          "strong": {"steps_to_relearn": {"unlearned": 20, "retrained": 60}}}
    (runs["demo"] / "metrics.json").write_text(json.dumps(metrics))
    page = write_report([runs["demo"], runs["compare"]], tmp_path / "report.html").read_text(encoding="utf-8")
    [demo] = _verdict_rows(page, "demo")
    # after 6x, retrained 5x, before 1x: forgot beyond retraining (1.2x), retain 6x the original's: not kept
    assert demo[0] == "i2i" and demo[1].startswith("yes: forget hole MSE 1.2×")
    assert demo[2].startswith("no: retain hole MSE 6×, FID 6×")
    assert demo[3] == ("default: 15 steps (retrained: not within the probe); strong: 20 steps "
                       "(retrained: 60 steps)")
    compare = {row[0]: row for row in _verdict_rows(page, "compare")}
    assert set(compare) == {"i2i", "max_loss"}  # the references are what the methods are judged against
    assert compare["i2i"][1].startswith("yes: forget hole MSE 1.5×")  # 3x against the retrained 2x
    assert compare["max_loss"][2].startswith("no: retain hole MSE 9×")
    assert "<details>" in page and page.index("settings, every metric") > page.index('<div class="verdict">')
