"""Every example of docs/client.md runs, against a local FakeSmsbao for localhost:8000.

A block is skipped when the prose just before it says *not run* (any case)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsgate.client.testing import FakeSmsbao

DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def examples() -> list[tuple[int, str, bool]]:
    """(line, code, runnable) for each python block."""
    text = DOC.read_text(encoding="utf-8")
    found, previous_end = [], 0
    for match in BLOCK.finditer(text):
        runnable = "not run" not in text[previous_end : match.start()].lower()
        found.append((text.count("\n", 0, match.start()) + 1, match[1], runnable))
        previous_end = match.end()
    return found


def test_the_page_has_runnable_examples() -> None:
    assert sum(runnable for _, _, runnable in examples()) >= 6


@pytest.mark.parametrize(
    ("line", "code"),
    [pytest.param(line, code, id=f"line{line}") for line, code, ok in examples() if ok],
)
def test_example_runs(line: int, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeSmsbao() as fake:
        code = code.replace("http://localhost:8000", fake.url)
        exec(compile(code, f"client.md:{line}", "exec"), {})
    assert "Error" not in capsys.readouterr().out
