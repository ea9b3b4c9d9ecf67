"""The admin CLI as a process: `python -m smsgate ...` on a real database, no server.

Output goes to pipes, as in scripts and CI (no COLUMNS: rich's default width of 80).
The command set is checked on SQLite and PostgreSQL; the error cases, which never reach
the database's write path, on SQLite only.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.e2e.server_support import Account, ServerProcess, parse_api_key, parse_show, unique_name

pytestmark = pytest.mark.backends("sqlite")

BOTH = pytest.mark.backends("sqlite", "postgres")
SHOW_LABELS = (
    "username",
    "status",
    "expiry",
    "balance",
    "sent",
    "allowlist",
    "mo_url",
    "ext_code",
)
DB_STATE_TABLES = (
    "accounts",
    "ledger",
    "api_keys",
    "ip_allow",
    "signatures",
    "products",
    "account_products",
    "words",
    "audit",
    "config_rev",
)


@pytest.fixture(scope="module")
def gw(shared_gateway: ServerProcess) -> ServerProcess:
    """The module's database and settings; only the CLI runs (no server process)."""
    return shared_gateway


@pytest.fixture(scope="module")
def carol(gw: ServerProcess) -> Account:
    """The account every bad command aims at (balance 10); no test changes it."""
    return gw.create_account(balance=10, username="carol")


@pytest.fixture(scope="module")
def dave(gw: ServerProcess) -> Account:
    """The account the command tests below configure (they do not interfere)."""
    return gw.create_account()


@pytest.fixture(scope="module")
def carol_shown(gw: ServerProcess, carol: Account) -> dict[str, str]:
    return gw.show(carol.username)


def db_state(gw: ServerProcess) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the admin tables: a failed command must leave all of it alone."""
    with gw.engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(sa.text(f"SELECT * FROM {table}"))]
            for table in DB_STATE_TABLES
        }


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# -- --help ------------------------------------------------------------------------------------


HELP = {
    "smsgate": ((), ("serve", "migrate", "account", "signature", "product", "words", "config")),
    "account": (
        ("account",),
        ("create", "show", "list", "topup", "set", "allow-ip", "apikey", "products"),
    ),
    "signature": (("signature",), ("add", "list")),
    "product": (("product",), ("add", "list")),
    "words": (("words",), ("add", "import", "list", "remove")),
    "config": (("config",), ("sample",)),
}


@pytest.fixture(scope="module")
def helps(gw: ServerProcess) -> dict[str, subprocess.CompletedProcess[str]]:
    """`--help` of every group, run concurrently."""
    results = gw.cli_many(*([*group, "--help"] for group, _ in HELP.values()))
    return dict(zip(HELP, results, strict=True))


@pytest.mark.parametrize("group", list(HELP))
def test_help(helps: dict[str, subprocess.CompletedProcess[str]], group: str) -> None:
    result = helps[group]
    assert result.stderr == ""
    assert "Usage:" in result.stdout
    for name in HELP[group][1]:
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", result.stdout, re.M), name


def test_group_without_a_command_shows_help_without_a_traceback(gw: ServerProcess) -> None:
    result = gw.cli("account", check=False)
    assert "Usage:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# -- the command set, on every backend ---------------------------------------------------------


@BOTH
def test_account_lifecycle(gw: ServerProcess) -> None:
    name = unique_name("alice")
    created = gw.cli("account", "create", name, "--password", "s3cret-pass", "--balance", "25")
    assert f"created account {name} (balance 25)" in created.stdout
    first_key = parse_api_key(created.stdout)

    shown = parse_show(gw.cli("account", "show", name).stdout)
    assert {label: shown.get(label) for label in SHOW_LABELS} == {
        "username": name,
        "status": "active",
        "expiry": "never",
        "balance": "25",
        "sent": "0",
        "allowlist": "any address",
        "mo_url": "-",
        "ext_code": "-",
    }

    topped = gw.cli("account", "topup", name, "15", "--ref", "INV-1")
    assert topped.stdout.strip() == f"{name}: +15, balance 40"
    ext_code = str(abs(hash(name)) % 900000 + 100000)
    gw.cli(
        "account", "set", name,
        "--mo-url", "https://example.com/mo",
        "--ext-code", ext_code,
        "--expires", "2030-06-30",
        "--disable",
    )  # fmt: skip
    allowed = gw.cli("account", "allow-ip", name, "10.0.0.0/8", "192.168.1.7", "2001:db8::/32")
    assert "10.0.0.0/8, 192.168.1.7/32, 2001:db8::/32" in allowed.stdout
    second_key = parse_api_key(gw.cli("account", "apikey", name).stdout)
    assert second_key != first_key

    shown = parse_show(gw.cli("account", "show", name).stdout)
    assert {label: shown.get(label) for label in SHOW_LABELS} == {
        "username": name,
        "status": "disabled",
        "expiry": "2030-06-30 23:59 UTC",
        "balance": "40",
        "sent": "0",
        "allowlist": "10.0.0.0/8, 192.168.1.7/32, 2001:db8::/32",
        "mo_url": "https://example.com/mo",
        "ext_code": ext_code,
    }
    assert first_key[:4] in shown["api_keys"]
    assert second_key[:4] in shown["api_keys"]
    assert first_key not in shown["api_keys"]  # keys are shown once, then only a hint

    gw.cli("account", "set", name, "--enable", "--expires", "never", "--mo-url", "")
    listed = gw.cli("account", "list").stdout
    row = next(line for line in listed.splitlines() if f" {name} " in line)
    cells = [c.strip() for c in re.split(r"[│┃]", row) if c.strip()]
    assert cells == [name, "active", "40", "0", "never", ext_code, "-"]
    assert gw.ledger(name) == [(25, "topup", "opening balance"), (15, "topup", "INV-1")]


@BOTH
def test_migrate_is_idempotent(gw: ServerProcess, carol: Account) -> None:
    result = gw.cli("migrate")  # on a database in use
    assert result.stdout.startswith("database is up to date: ")
    if gw.database_url.startswith("sqlite"):
        assert "SQLite at " in result.stdout
        assert "smsgate.db" in result.stdout


def test_migrate_creates_a_fresh_data_dir(tmp_path: Path) -> None:
    fresh = ServerProcess(tmp_path / "new" / "data", None)
    result = fresh.cli("migrate")
    assert "database is up to date" in result.stdout
    assert (tmp_path / "new" / "data" / "smsgate.db").is_file()


def test_signatures(gw: ServerProcess, dave: Account) -> None:
    name = dave.username
    assert (
        gw.cli("signature", "add", name, "短信宝").stdout.strip()
        == f"{name} may sign with 【短信宝】"
    )
    assert "【Acme Ltd】" in gw.cli("signature", "add", name, "【Acme Ltd】").stdout
    assert gw.cli("signature", "list", name).stdout.splitlines() == ["【Acme Ltd】", "【短信宝】"]
    again = gw.cli("signature", "add", name, "短信宝", check=False)
    assert again.returncode == 1
    assert error_lines(again)[0].startswith("error: ")


def test_products(gw: ServerProcess, dave: Account) -> None:
    name = dave.username
    pid, vip = f"m{unique_name('')[-6:]}", f"v{unique_name('')[-6:]}"
    out = gw.cli("product", "add", pid, "Marketing", "--price", "2", "--template-required")
    assert out.stdout.strip() == f"added product {pid} (Marketing)"
    gw.cli("product", "add", vip, "VIP", "--private")
    rows = {
        cells[0]: cells
        for line in gw.cli("product", "list").stdout.splitlines()
        if len(cells := [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]) == 6
    }
    assert rows[pid] == [pid, "Marketing", "2", "simulator", "required", "all accounts"]
    assert rows[vip] == [vip, "VIP", "1", "simulator", "-", "private"]

    granted = gw.cli("account", "products", name, vip)
    assert granted.stdout.strip() == f"{name} may use {vip}"
    assert gw.show(name)["products"] == vip


def test_words(gw: ServerProcess) -> None:
    first, second = unique_name("w"), unique_name("w")
    assert gw.cli("words", "add", first, second).stdout.strip() == "added 2 word(s)"
    listing = gw.data_dir / "words.txt"
    listing.write_text(
        f"\ufeff# banned words\n\n{first}\n  赌博{first[-6:]}  \n发票{first[-6:]}\n", "utf-8"
    )
    imported = gw.cli("words", "import", str(listing), "--category", "fraud").stdout
    assert imported.startswith("added 2 new word(s) of 3 in ")  # `first` was already there
    words = gw.cli("words", "list").stdout
    for word in (first, second, f"赌博{first[-6:]}", f"发票{first[-6:]}"):
        assert word in words
    assert "# banned words" not in words
    assert gw.cli("words", "remove", first).stdout.strip() == "removed 1 word(s)"
    with gw.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT word FROM words")).scalars())
    assert first not in stored
    assert {second, f"赌博{first[-6:]}", f"发票{first[-6:]}"} <= stored


@pytest.fixture(scope="module")
def sample(gw: ServerProcess) -> str:
    return gw.cli("config", "sample").stdout


def test_config_sample_lists_every_setting(sample: str) -> None:
    for key in ("data_dir", "database_url", "port", "query_interval_seconds"):
        assert re.search(rf"^# {key} = ", sample, re.M), key
    assert "# query_interval_seconds = 60.0" in sample


def test_config_sample_is_valid_toml_once_uncommented(sample: str) -> None:
    tomllib.loads(sample)  # as printed: comments only
    settings = "\n".join(
        line.removeprefix("# ").split("  # ")[0]
        for line in sample.splitlines()
        if re.match(r"^# \w+ = ", line)
    )
    assert "query_interval_seconds" in tomllib.loads(settings)


def test_account_show_keeps_a_long_value_on_its_line(gw: ServerProcess, dave: Account) -> None:
    name = dave.username
    url = "https://hooks.example.com/smsgate/replies/receive?token=" + "k" * 40
    gw.cli("account", "set", name, "--mo-url", url)
    assert gw.show(name)["mo_url"] == url


# -- errors: exit 1, one line on stderr, nothing changed ---------------------------------------


@dataclass(frozen=True)
class BadCommand:
    args: tuple[str, ...]
    says: str  # a fragment of the message
    env: dict[str, str] = field(default_factory=dict)


UNREACHABLE = {"SMSGATE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}

BAD_COMMANDS: dict[str, BadCommand] = {
    "unknown account": BadCommand(("account", "show", "nobody"), "no account 'nobody'"),
    "top-up of an unknown account": BadCommand(
        ("account", "topup", "nobody", "5"), "no account 'nobody'"
    ),
    "duplicate account": BadCommand(
        ("account", "create", "carol", "--password", "other-pass", "--balance", "100"),
        "already exists",
    ),
    "negative top-up": BadCommand(("account", "topup", "carol", "-5"), "positive whole number"),
    "top-up abc": BadCommand(("account", "topup", "carol", "abc"), "whole number"),
    "top-up 1.5": BadCommand(("account", "topup", "carol", "1.5"), "whole number"),
    "zero top-up": BadCommand(("account", "topup", "carol", "0"), "positive whole number"),
    "bad CIDR": BadCommand(
        ("account", "allow-ip", "carol", "10.0.0.0/8", "300.1.1.1/8"),
        "invalid IP network '300.1.1.1/8'",
    ),
    "bad expiry date": BadCommand(
        ("account", "set", "carol", "--expires", "2020-13-45"),
        "cannot read '2020-13-45' as a date",
    ),
    "bad ext code": BadCommand(
        ("account", "set", "carol", "--ext-code", "12ab"), "invalid extended code '12ab'"
    ),
    "signature too short": BadCommand(("signature", "add", "carol", "ab"), "3-10 characters"),
    "unknown product grant": BadCommand(
        ("account", "products", "carol", "nope"), "no product 'nope'"
    ),
    "words file missing": BadCommand(
        ("words", "import", "/nonexistent/smsgate-words.txt"),
        "cannot read /nonexistent/smsgate-words.txt",
    ),
    "database unreachable": BadCommand(
        ("account", "show", "carol"),
        "the database is not reachable",
        env=UNREACHABLE,
    ),
    "missing argument": BadCommand(("account", "topup", "carol"), "Missing argument 'N'"),
    "unknown option": BadCommand(
        ("account", "show", "carol", "--bogus"),
        "--bogus",
    ),
    "unknown command": BadCommand(
        ("account", "frobnicate", "carol"),
        "frobnicate",
    ),
}


@dataclass
class BadRuns:
    results: dict[str, subprocess.CompletedProcess[str]]
    before: dict[str, list[tuple[Any, ...]]]
    after: dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def bad_runs(gw: ServerProcess, carol: Account, carol_shown: dict[str, str]) -> BadRuns:
    """Every bad command, run concurrently (each CLI start costs ~0.7 s), between two
    dumps of the admin tables; `account show carol` was captured before them."""
    before = db_state(gw)
    plain = [case for case, bad in BAD_COMMANDS.items() if not bad.env]
    results = dict(
        zip(
            plain,
            gw.cli_many(*(BAD_COMMANDS[case].args for case in plain), check=False),
            strict=True,
        )
    )
    for case, bad in BAD_COMMANDS.items():
        if bad.env:
            results[case] = gw.cli(*bad.args, check=False, env=bad.env)
    return BadRuns(results, before, db_state(gw))


@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_bad_command_exits_1_with_a_message(bad_runs: BadRuns, case: str) -> None:
    result = bad_runs.results[case]
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert result.stdout == ""
    assert BAD_COMMANDS[case].says in " ".join(result.stderr.split())


@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_bad_command_says_why_in_one_line(bad_runs: BadRuns, case: str) -> None:
    lines = error_lines(bad_runs.results[case])
    if BAD_COMMANDS[case].env == UNREACHABLE:  # the error, then what to check
        assert len(lines) == 2, lines
        assert lines[1].startswith("check --data-dir / SMSGATE_DATABASE_URL")
    else:
        assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert BAD_COMMANDS[case].says in lines[0]


def test_bad_commands_change_nothing_in_the_database(bad_runs: BadRuns) -> None:
    changed = {t for t in DB_STATE_TABLES if bad_runs.after[t] != bad_runs.before[t]}
    assert not changed, f"bad commands {list(BAD_COMMANDS)} changed the tables {changed}"


def test_account_show_is_unchanged_by_bad_commands(
    gw: ServerProcess, carol: Account, carol_shown: dict[str, str], bad_runs: BadRuns
) -> None:
    ledger = gw.ledger(carol.username)
    # `carol_shown` was taken before the first bad command above; two more money errors:
    for args in (
        ("account", "topup", "carol", "1000000000001"),
        ("account", "adjust", "carol", "-11", "--reason", "more than the balance"),
    ):
        assert gw.cli(*args, check=False).returncode == 1, args
    assert gw.show(carol.username) == carol_shown
    assert carol_shown["balance"] == "10"
    assert carol_shown["sent"] == "0"
    assert gw.ledger(carol.username) == ledger == [(10, "topup", "opening balance")]
