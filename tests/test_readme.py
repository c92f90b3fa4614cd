"""The README's Quickstart is what CI runs: its test command, step by step, is .ci/run's body."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README has no Quickstart bash block"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert len(lines) == 2, "the Quickstart has exactly two commands"
    assert "renewlm demo" in lines[0]
    return lines[1]


def test_ci_runs_the_readme_test_command_literally():
    steps = _readme_test_command().split(" && ")
    body = [
        line for line in (ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert body[-len(steps):] == steps
    # Before them, only system packages a test needs, installed when absent (Chromium for the report).
    assert all(line.startswith("command -v ") for line in body[: -len(steps)])


def test_readme_test_command_needs_no_module_path_tricks():
    # A bare `pytest` (not `python -m pytest`) must import `tests.*`: pyproject puts the checkout on the path.
    assert _readme_test_command().endswith("&& pytest -q")
    assert 'pythonpath = ["."]' in (ROOT / "pyproject.toml").read_text()
