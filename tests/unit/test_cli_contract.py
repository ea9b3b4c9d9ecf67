"""The `smsgate` command's names are a contract (design.md "CLI contract", README.md,
docs/client.md): every command and option named there must exist. Read from the Typer
app's click tree; nothing is started. Also: how the flags become Settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
import typer.main
from typer.testing import CliRunner

from smsgate import __version__
from smsgate.cli.context import DataDir, build_settings
from smsgate.cli.main import build
from smsgate.settings import HANDOVER_ENV, Settings, handed_over

# command path -> the options the docs name for it (each spelling: "-u" and "--user")
CONTRACT: dict[str, set[str]] = {
    "": {"--data-dir", "--version"},
    "serve": {
        "--host", "--port", "--data-dir", "--workers", "--no-worker", "--demo",
        "--tls-cert", "--tls-key", "--tls-port", "--cmpp-port",
    },
    "worker": set(),
    "migrate": set(),
    "account create": {"--password", "--balance"},
    "account topup": set(),
    "account show": set(),
    "account list": set(),
    "account set": {
        "--mo-url", "--expires", "--disable", "--enable", "--ext-code", "--provider-codes",
        "--all-codes", "--unknown-g-default", "--unknown-g-refused", "--cmpp-sp-id",
        "--cmpp-secret",
    },
    "account allow-ip": set(),
    "account apikey": set(),
    "account products": set(),
    "account limits": {"--per-minute", "--per-hour", "--per-day", "--daily-cap"},
    "signature add": set(),
    "words add": set(),
    "words import": set(),
    "product add": {"--carrier", "--price", "--template-required", "--private"},
    "product limits": {"--per-minute", "--per-hour", "--per-day"},
    "product set": {"--carriers"},
    "carrier add": {
        "--kind", "--host", "--port", "--system-id", "--password", "--system-type",
        "--source-addr", "--window", "--tps", "--binds", "--url", "--username",
        "--access-key", "--secret", "--networks", "--sp-id", "--version",
    },
    "carrier list": set(),
    "carrier show": set(),
    "carrier set": {"--enable", "--disable"},
    "carrier remove": set(),
    "template add": {"--product"},
    "template approve": set(),
    "template reject": set(),
    "template set-upstream": {"--carrier", "--code", "--remove"},
    "template upstream-list": set(),
    "messages": {"--account", "--phone", "--state"},
    "messages settle": {"--delivered", "--failed", "--refund", "--carrier", "--state", "--before"},
    "config sample": set(),
    "backup": set(),
    "restore": {"--force"},
    "copy-database": {"--to"},
    "mo list": {"--account", "--state", "--unmatched"},
    "mo show": set(),
    "mo repush": set(),
    "mo assign": set(),
    "simulate reply": {"--to"},
    "operator create": {"--password"},
    "send": {
        "--server", "-u", "--user", "-p", "--password", "-k", "--api-key", "-g", "--product",
        "--file", "--restart", "--retry-unknown",
    },
    "balance": {"--server", "-u", "--user", "-p", "--password", "-k", "--api-key"},
}  # fmt: skip

# In design.md, not built yet: pinned here once they exist.
PLANNED: dict[str, set[str]] = {}

# Commands that do not open the database, so take no --data-dir of their own.
NO_DATABASE = {"send", "balance", "config sample"}


def command_tree() -> dict[str, typer.main.TyperCommand | typer.main.TyperGroup]:
    """Every command and group of `smsgate`, by path ("" is the root)."""
    found: dict[str, typer.main.TyperCommand | typer.main.TyperGroup] = {}

    def walk(path: str, command: typer.main.TyperCommand | typer.main.TyperGroup) -> None:
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(f"{path} {name}".strip(), sub)

    walk("", typer.main.get_command(build()))
    return found


def options(command: typer.main.TyperCommand | typer.main.TyperGroup) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


TREE = command_tree()


@pytest.mark.parametrize("path", list(CONTRACT))
def test_documented_command_exists_with_its_options(path: str) -> None:
    assert path in TREE, f"`smsgate {path}` is documented but missing"
    missing = CONTRACT[path] - options(TREE[path])
    assert not missing, f"`smsgate {path}` lost {sorted(missing)}"


def test_planned_commands_are_not_half_built() -> None:
    """A planned command that appears must bring its documented options (then move it up)."""
    for path, wanted in PLANNED.items():
        if path in TREE and path not in CONTRACT:
            assert wanted <= options(TREE[path]), path


def test_every_database_command_takes_data_dir() -> None:
    """`smsgate --data-dir D CMD` and `smsgate CMD --data-dir D` both work (README)."""
    leaves = [p for p, c in TREE.items() if p and not getattr(c, "commands", None)]
    lacking = [p for p in leaves if p not in NO_DATABASE and "--data-dir" not in options(TREE[p])]
    assert not lacking


# -- flags become Settings once; nothing goes through os.environ ------------------------------


@pytest.fixture
def probe() -> typer.Typer:
    """The real root with one extra command that prints the data dir it would use."""
    app = build()

    @app.command("probe")
    def _probe(data_dir: DataDir = None) -> None:
        typer.echo(build_settings(data_dir).data_dir)

    return app


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["probe"], {}, "smsgate-data"),
        (["probe"], {"SMSGATE_DATA_DIR": "from-env"}, "from-env"),
        (["--data-dir", "root", "probe"], {"SMSGATE_DATA_DIR": "from-env"}, "root"),
        (["probe", "--data-dir", "own"], {"SMSGATE_DATA_DIR": "from-env"}, "own"),
        (["--data-dir", "root", "probe", "--data-dir", "own"], {}, "own"),
    ],
)
def test_data_dir_precedence(
    probe: typer.Typer,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    expected: str,
) -> None:
    monkeypatch.delenv("SMSGATE_DATA_DIR", raising=False)
    monkeypatch.delenv("SMSGATE_CONFIG", raising=False)
    before = dict(os.environ)
    result = CliRunner().invoke(probe, args, env=env)
    assert result.exit_code == 0, result.output
    assert Path(result.output.strip()) == Path(expected)
    assert dict(os.environ) == before


def test_a_flag_overrides_the_environment_and_unset_flags_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMSGATE_PORT", "9000")
    monkeypatch.setenv("SMSGATE_HOST", "0.0.0.0")
    settings = build_settings(None, host=None, port=9100, run_worker=False)
    assert (settings.host, settings.port, settings.run_worker) == ("0.0.0.0", 9100, False)


def test_the_data_dirs_toml_file_is_read_when_the_dir_is_a_flag(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SMSGATE_DATA_DIR", raising=False)
    monkeypatch.delenv("SMSGATE_CONFIG", raising=False)
    monkeypatch.delenv("SMSGATE_PORT", raising=False)
    (tmp_path / "smsgate.toml").write_text("port = 18123\n", encoding="utf-8")
    assert build_settings(tmp_path).port == 18123


def test_server_processes_get_the_settings_handed_over_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`serve --workers N`: one JSON variable, which wins over the SMSGATE_* variables."""
    built = Settings(data_dir=tmp_path, port=18124, trusted_proxies=["10.0.0.0/8"])
    monkeypatch.setenv(HANDOVER_ENV, built.model_dump_json())
    monkeypatch.setenv("SMSGATE_PORT", "9000")
    assert handed_over() == built
    assert json.loads(os.environ[HANDOVER_ENV])["port"] == 18124


def test_without_a_hand_over_server_processes_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HANDOVER_ENV, raising=False)
    monkeypatch.setenv("SMSGATE_PORT", "9001")
    assert handed_over().port == 9001


def test_version_needs_no_command() -> None:
    result = CliRunner().invoke(build(), ["--version"])
    assert (result.exit_code, result.output.split()) == (0, ["smsgate", __version__])


def test_sample_config_lists_only_declared_settings() -> None:
    result = CliRunner().invoke(build(), ["config", "sample"])
    assert result.exit_code == 0
    keys = {line.split()[1] for line in result.output.splitlines() if " = " in line}
    assert keys == set(Settings.model_fields)
    assert {"redis_url", "redis_prefix"} <= keys  # scale-out: the counters in Redis
