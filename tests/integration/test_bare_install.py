"""A bare ``pip install smsgate`` (and ``smsgate[client]``) in a fresh virtualenv: the
``smsgate`` command runs ``send`` and ``balance`` with httpx alone, and says what to install
for the rest. The wheel is built from this checkout; pip needs a package index for httpx
and the build backend (skipped when there is none)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsgate.client.testing import FakeSmsbao
from tests.integration.test_client_isolated_venv import NO_INDEX_SIGNS

ROOT = Path(__file__).resolve().parents[2]
KEY = "0123456789abcdef0123456789abcdef"


def _pip(python: Path | str, *args: str) -> None:
    run = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0:
        output = run.stdout + run.stderr
        sign = next((s for s in NO_INDEX_SIGNS if s in output), None)
        if sign is not None:
            pytest.skip(f"pip cannot reach a package index ({sign})")
        pytest.fail(f"pip {' '.join(args)} failed:\n{output}")


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with the bare package installed from a wheel of this checkout."""
    where = tmp_path_factory.mktemp("bare")
    _pip(sys.executable, "wheel", "--no-deps", "-q", "-w", str(where / "dist"), str(ROOT))
    (wheel,) = (where / "dist").glob("smsgate-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(where / "venv")], check=True)
    _pip(where / "venv" / "bin" / "python", "install", "-q", str(wheel))
    return where / "venv" / "bin"


@pytest.fixture
def fake() -> Iterator[FakeSmsbao]:
    with FakeSmsbao() as server:
        yield server


def smsgate(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "smsgate"), *args], capture_output=True, text=True, timeout=60
    )


def test_the_bare_install_has_no_server_or_cli_dependencies(bare: Path) -> None:
    check = (
        "import importlib.util as u; "
        "print([n for n in ('typer', 'rich', 'fastapi', 'sqlalchemy') if u.find_spec(n)])"
    )
    run = subprocess.run([str(bare / "python"), "-c", check], capture_output=True, text=True)
    assert run.stdout.strip() == "[]"


def test_send_and_balance_work_on_the_bare_install(bare: Path, fake: FakeSmsbao) -> None:
    fake.script = ["0", "0\n7,993"]
    sent = smsgate(bare, "send", "--server", fake.url, "-u", "alice", "-k", KEY,
                   "13800138000,13900139000", "【短信宝】[测试] 您的验证码是4564")  # fmt: skip
    assert (sent.returncode, sent.stdout, sent.stderr) == (0, "Accepted: 2 number(s)\n", "")
    assert fake.requests[0].params["c"] == "【短信宝】[测试] 您的验证码是4564"
    balance = smsgate(bare, "balance", "--server", fake.url, "-u", "alice", "-k", KEY)
    assert (balance.returncode, balance.stdout) == (0, "sent 7, remaining 993\n")


def test_an_error_is_one_line_on_the_bare_install(bare: Path, fake: FakeSmsbao) -> None:
    fake.script = ["41"]
    run = smsgate(bare, "send", "--server", fake.url, "-u", "alice", "-k", KEY, "13800138000",
                  "【短信宝】你好")  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.startswith("Error 41: ")
    assert "Traceback" not in run.stderr


def test_other_commands_say_what_to_install(bare: Path) -> None:
    serve = smsgate(bare, "serve", "--demo")
    assert serve.returncode == 1
    assert "pip install 'smsgate[server]'" in serve.stderr
    assert "Traceback" not in serve.stderr
    usage = smsgate(bare, "--help")
    assert usage.returncode == 0
    assert "pip install 'smsgate[cli]'" in usage.stdout
    assert smsgate(bare, "--version").stdout.startswith("smsgate ")


def test_the_client_extra_is_the_same_light_install(bare: Path, fake: FakeSmsbao) -> None:
    (wheel,) = (bare.parent.parent / "dist").glob("smsgate-*.whl")
    _pip(bare / "python", "install", "-q", f"{wheel}[client]")
    fake.script = ["0\n1,2"]
    balance = smsgate(bare, "balance", "--server", fake.url, "-u", "alice", "-p", "pw")
    assert (balance.returncode, balance.stdout) == (0, "sent 1, remaining 2\n")
    test_the_bare_install_has_no_server_or_cli_dependencies(bare)
