"""Every Python file of the project passes pyflakes: no undefined name, no unused import.

The benchmarks and scripts run only by hand, so a name one of them lost (an import removed in an
edit) would otherwise show only in a long run, after its first minutes of work.
"""

from pathlib import Path

from pyflakes.api import checkPath
from pyflakes.reporter import Reporter

ROOT = Path(__file__).resolve().parents[1]


class _Collect(Reporter):
    def __init__(self):
        self.problems: list[str] = []

    def unexpectedError(self, filename, message):
        self.problems.append(f"{filename}: {message}")

    def syntaxError(self, filename, message, lineno, offset, text):
        self.problems.append(f"{filename}:{lineno}: {message}")

    def flake(self, message):
        self.problems.append(str(message))


def test_pyflakes_finds_nothing():
    files = sorted(p for folder in ("src", "benchmarks", "scripts", "tests") for p in (ROOT / folder).rglob("*.py"))
    assert len(files) > 50
    report = _Collect()
    for file in files:
        checkPath(str(file), report)
    assert not report.problems, "\n".join(report.problems)


def test_the_check_sees_an_undefined_name(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def main():\n    return relearning()\n")
    report = _Collect()
    checkPath(str(broken), report)
    assert any("undefined name 'relearning'" in problem for problem in report.problems)
