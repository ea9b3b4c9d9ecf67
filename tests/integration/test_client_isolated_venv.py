"""The SDK works with nothing but httpx: a fresh virtualenv, ``pip install httpx``, and only
``smsgate/errors.py`` + ``smsgate/client/`` on the path, sending to a local server."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsgate.client.testing import FakeSmsbao, Received

SRC = Path(__file__).resolve().parents[2] / "src" / "smsgate"
NO_INDEX_SIGNS = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "Max retries exceeded",
    "ProxyError",
    "timed out",
)
CONTENT = "【短信宝】您的验证码是4564 & 100%+"

PROGRAM = textwrap.dedent(
    """
    import importlib.util, sys
    for name in ("fastapi", "sqlalchemy", "pydantic", "typer", "rich", "starlette"):
        assert importlib.util.find_spec(name) is None, name + " is installed"
    from smsgate.client import Client
    with Client("alice", password="pw", base_url=sys.argv[1], timeout=10) as client:
        client.send(["13800138000", "13900139000"], sys.argv[2])
        print(client.balance())
    """
)


@pytest.fixture
def fake() -> Iterator[FakeSmsbao]:
    with FakeSmsbao() as server:
        yield server


def make_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    python = path / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--retries", "1",
         "--timeout", "20", "httpx"],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    if install.returncode != 0:
        output = install.stdout + install.stderr
        sign = next((s for s in NO_INDEX_SIGNS if s in output), None)
        if sign is not None:
            pytest.skip(f"pip cannot reach a package index to install httpx ({sign})")
        pytest.fail(f"pip install httpx failed:\n{output}")
    return python


def sdk_only_tree(path: Path) -> Path:
    """``smsgate/__init__.py`` (empty), ``smsgate/errors.py`` and ``smsgate/client/``."""
    package = path / "smsgate"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    shutil.copy(SRC / "errors.py", package / "errors.py")
    shutil.copytree(
        SRC / "client", package / "client", ignore=shutil.ignore_patterns("__pycache__")
    )
    return path


def test_the_sdk_sends_from_a_venv_with_only_httpx(tmp_path: Path, fake: FakeSmsbao) -> None:
    python = make_venv(tmp_path / "venv")
    tree = sdk_only_tree(tmp_path / "site")
    result = subprocess.run(
        [str(python), "-I", "-c", f"import sys; sys.path.insert(0, {str(tree)!r}); " + PROGRAM,
         fake.url, CONTENT],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Balance(sent=0, remaining=0)"
    params = {
        "u": "alice",
        "p": hashlib.md5(b"pw").hexdigest(),
        "m": "13800138000,13900139000",
        "c": CONTENT,
    }
    assert fake.requests[0] == Received("/sms", params)
    assert fake.requests[1].path == "/query"
