"""What a newcomer meets first on the command line, run as real processes: square brackets
survive in help text, read-only commands create nothing and say which database they read,
`serve --data-dir D` works after the command name, `--version` needs no command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from smsgate import __version__
from tests.e2e.server_support import free_port
from tests.support.waiting import wait_for

BIN = Path(sys.executable).parent


def smsgate(cwd: Path, *args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    env["COLUMNS"] = "200"
    program = f"import sys; {prelude}sys.argv = ['smsgate', *sys.argv[1:]]; "
    program += "from smsgate.cli.entry import main; main()"
    return subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_help_keeps_its_square_brackets(tmp_path: Path) -> None:
    run = smsgate(tmp_path, "serve", "--help")
    assert run.returncode == 0
    assert "Listen address." in run.stdout
    assert "127.0.0.1" in run.stdout


def test_the_missing_server_extra_hint_keeps_its_square_brackets(tmp_path: Path) -> None:
    hide = "".join(
        f"sys.modules[{name!r}] = None; "
        for name in ("sqlalchemy", "pydantic", "pydantic_settings", "fastapi", "alembic")
    )
    run = smsgate(tmp_path, "--help", prelude=hide)
    assert run.returncode == 0, run.stderr
    assert "pip install 'smsgate[server]'" in run.stdout


def test_messages_in_an_empty_directory_creates_nothing_and_says_where_it_looked(
    tmp_path: Path,
) -> None:
    run = smsgate(tmp_path, "messages")
    assert run.returncode == 1
    assert f"no database at {tmp_path / 'smsgate-data' / 'smsgate.db'}" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_messages_names_the_database_it_read(tmp_path: Path) -> None:
    created = smsgate(tmp_path, "account", "create", "alice", "--password", "secret123",
                      "--data-dir", "d")  # fmt: skip
    assert created.returncode == 0, created.stderr
    run = smsgate(tmp_path / "d", "messages", "--data-dir", ".")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "no messages\n"
    assert run.stderr == f"database: {tmp_path / 'd' / 'smsgate.db'}\n"


def test_version_needs_no_command(tmp_path: Path) -> None:
    run = smsgate(tmp_path, "--version")
    assert (run.returncode, run.stdout) == (0, f"smsgate {__version__}\n")


@pytest.mark.parametrize("order", ["after", "before"])
def test_migrate_takes_data_dir_before_or_after_the_command(tmp_path: Path, order: str) -> None:
    """`serve` shares the option's code with `migrate` (cli/context.py); migrate returns."""
    args = ["migrate", "--data-dir", "D"] if order == "after" else ["--data-dir", "D", "migrate"]
    run = smsgate(tmp_path, *args)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "D" / "smsgate.db").exists()


def test_serve_takes_data_dir_after_the_command(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    proc = subprocess.Popen(
        [str(BIN / "smsgate"), "serve", "--data-dir", "D", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        healthy = wait_for(lambda: _healthy(port), timeout=30)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=15)[0].decode()
    assert healthy, output
    assert f"SQLite at {tmp_path / 'D' / 'smsgate.db'}" in output


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).is_success
    except httpx.HTTPError:
        return False
