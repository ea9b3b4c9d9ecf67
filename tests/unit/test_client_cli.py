"""``smsgate send`` / ``smsgate balance`` against a real local HTTP server playing SMSBao.

The bulk tests check the promise of the journal: across an interrupted run and its resume,
no number reaches the server twice (unless --retry-unknown or --restart says so)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from smsgate.cli.client import register
from smsgate.client.journal import Journal, journal_path, message_key
from smsgate.client.phonefile import read_phones
from smsgate.client.testing import DROP, HOLD, FakeSmsbao, Received

KEY = "0123456789abcdef0123456789abcdef"
TEXT = "【短信宝】周末特惠 & 100% 好礼"
NUMBERS = [str(13000000000 + i) for i in range(250)]
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def fake() -> Iterator[FakeSmsbao]:
    with FakeSmsbao() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMSGATE_SERVER", "SMSGATE_USER", "SMSGATE_PASSWORD", "SMSGATE_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def app() -> typer.Typer:
    main = typer.Typer()
    register(main)
    return main


def run(fake: FakeSmsbao, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app(), [args[0], "--server", fake.url, "-u", "alice", *args[1:]])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.csv"
    rows = ["name,mobile", *(f"user {i},{n}" for i, n in enumerate(NUMBERS)), "dup," + NUMBERS[0]]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def send_file(fake: FakeSmsbao, csv_file: Path, *flags: str) -> tuple[int, str]:
    return run(fake, "send", "-k", KEY, "--file", str(csv_file), *flags, TEXT)


def assert_no_number_twice(fake: FakeSmsbao) -> None:
    sent = fake.sent_numbers()
    assert len(sent) == len(set(sent)), "a number was sent twice"


# ---- one request -------------------------------------------------------------------------


def test_send_to_a_few_numbers(fake: FakeSmsbao) -> None:
    code, output = run(fake, "send", "-p", "pw", "13800138000,13900139000", TEXT)
    assert code == 0
    assert "Accepted: 2 number(s)" in output
    params = {
        "u": "alice",
        "p": hashlib.md5(b"pw").hexdigest(),
        "m": "13800138000,13900139000",
        "c": TEXT,
    }
    assert fake.requests == [Received("/sms", params)]


def test_send_with_a_product_and_env_credentials(
    fake: FakeSmsbao, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMSGATE_SERVER", fake.url)
    monkeypatch.setenv("SMSGATE_USER", "bob")
    monkeypatch.setenv("SMSGATE_API_KEY", KEY)
    result = CliRunner().invoke(app(), ["send", "-g", "7", "13800138000", "hi"])
    assert result.exit_code == 0, result.output
    params = fake.requests[0].params
    assert (params["u"], params["p"], params["g"]) == ("bob", KEY, "7")


def test_balance(fake: FakeSmsbao) -> None:
    fake.script = ["0\n12,34"]
    code, output = run(fake, "balance", "-k", KEY)
    assert (code, output.strip()) == (0, "sent 12, remaining 34")
    assert fake.requests[0].path == "/query"


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        ("41", "Error 41: Insufficient balance (余额不足)"),
        ("30", "Error 30: Wrong password or ApiKey (错误密码)"),
        ("51", "Error 51: A phone number is invalid, or more than 99 numbers (手机号码不正确)"),
    ],
)
def test_an_error_is_one_line_and_exit_1(fake: FakeSmsbao, answer: str, line: str) -> None:
    fake.script = [answer]
    code, output = run(fake, "send", "-k", KEY, "13800138000", "hi")
    assert (code, output.strip()) == (1, line)


def test_a_timeout_on_a_send_says_the_outcome_is_unknown(fake: FakeSmsbao) -> None:
    fake.script = [DROP, "0"]
    code, output = run(fake, "send", "-k", KEY, "13800138000", "hi")
    assert code == 1
    assert output.startswith("Outcome unknown:")
    assert len(fake.requests) == 1


def test_an_unreachable_server_is_one_line() -> None:
    result = CliRunner().invoke(
        app(), ["balance", "--server", "http://127.0.0.1:9", "-u", "a", "-k", KEY]
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: GET /query failed: ConnectError")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("creds", [[], ["-p", "pw", "-k", KEY]])
def test_exactly_one_of_password_or_key(fake: FakeSmsbao, creds: list[str]) -> None:
    code, output = run(fake, "balance", *creds)
    assert code == 2
    assert "-p/--password or -k/--api-key" in output
    assert fake.requests == []


def test_send_needs_the_text(fake: FakeSmsbao) -> None:
    code, output = run(fake, "send", "-k", KEY, "13800138000")
    assert code == 2
    assert "missing TEXT" in output


# ---- the CSV file ------------------------------------------------------------------------


def test_read_phones_header_column_bom_and_blank_cells(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("\ufeffName,Phone\nann,13800138000\nbo,\n\n cy , 13900139000 \n", "utf-8")
    assert read_phones(path) == ["13800138000", "13900139000"]


def test_read_phones_first_column_with_or_without_a_header(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("13800138000,x\n+8613900139000,y\n", "utf-8")
    assert read_phones(path) == ["13800138000", "+8613900139000"]
    path.write_text("number\n13800138000\n", "utf-8")
    assert read_phones(path) == ["13800138000"]
    path.write_text("姓名,手机号码\n张三,13800138000\n", "utf-8")
    assert read_phones(path) == ["13800138000"]


def test_a_whole_file_in_batches_of_99(fake: FakeSmsbao, csv_file: Path) -> None:
    code, output = send_file(fake, csv_file)
    assert code == 0, output
    assert [len(r.params["m"].split(",")) for r in fake.requests] == [99, 99, 52]
    assert fake.sent_numbers() == NUMBERS
    assert {r.params["c"] for r in fake.requests} == {TEXT}
    assert "batch 3/3 (52 numbers): accepted" in output
    assert "Done: 250 accepted, 0 failed, 0 unknown, 0 not tried." in output
    assert journal_path(csv_file).exists()


def test_a_rerun_after_success_sends_nothing(fake: FakeSmsbao, csv_file: Path) -> None:
    send_file(fake, csv_file)
    code, output = send_file(fake, csv_file)
    assert code == 0
    assert "250 already accepted, 0 unknown, 0 to send" in output
    assert len(fake.requests) == 3
    assert_no_number_twice(fake)


def test_restart_ignores_the_journal(fake: FakeSmsbao, csv_file: Path) -> None:
    send_file(fake, csv_file)
    code, _ = send_file(fake, csv_file, "--restart")
    assert code == 0
    assert len(fake.requests) == 6
    assert fake.sent_numbers() == NUMBERS + NUMBERS


def test_a_different_message_is_a_different_send(fake: FakeSmsbao, csv_file: Path) -> None:
    send_file(fake, csv_file)
    code, _ = run(fake, "send", "-k", KEY, "--file", str(csv_file), "another message")
    assert code == 0
    assert len(fake.requests) == 6


def test_a_failed_batch_is_sent_on_resume_and_only_it(fake: FakeSmsbao, csv_file: Path) -> None:
    fake.script = ["0", "51", "0"]  # a bad number fails its batch only: the run goes on
    code, output = send_file(fake, csv_file)
    assert code == 1
    assert "batch 2/3 (99 numbers): Error 51: A phone number is invalid" in output
    assert "Done: 151 accepted, 99 failed, 0 unknown, 0 not tried." in output
    code, output = send_file(fake, csv_file)
    assert code == 0, output
    assert fake.requests[-1].params["m"].split(",") == NUMBERS[99:198]
    assert len(fake.requests) == 4
    assert sorted(fake.sent_numbers()) == NUMBERS
    assert_no_number_twice(fake)


def test_an_account_wide_error_stops_the_run(fake: FakeSmsbao, csv_file: Path) -> None:
    fake.script = ["0", "41"]
    code, output = send_file(fake, csv_file)
    assert code == 1
    assert "Stopping" in output
    assert "Done: 99 accepted, 99 failed, 0 unknown, 52 not tried." in output
    assert len(fake.requests) == 2
    code, _ = send_file(fake, csv_file)  # topped up: the rest goes out
    assert code == 0
    assert fake.sent_numbers() == NUMBERS
    assert_no_number_twice(fake)


def test_an_unknown_batch_is_not_resent_without_retry_unknown(
    fake: FakeSmsbao, csv_file: Path
) -> None:
    fake.script = ["0", DROP]
    code, output = send_file(fake, csv_file)
    assert code == 1
    assert "99 number(s) have an unknown outcome" in output
    assert "--retry-unknown" in output
    code, output = send_file(fake, csv_file)  # resume: only the batch never tried
    assert code == 1  # 99 numbers are still unconfirmed
    assert "99 already accepted, 99 unknown, 52 to send" in output
    assert_no_number_twice(fake)
    assert fake.sent_numbers() == NUMBERS
    code, output = send_file(fake, csv_file, "--retry-unknown")
    assert code == 0, output
    assert fake.requests[-1].params["m"].split(",") == NUMBERS[99:198]
    assert len(fake.requests) == 4


def test_retried_unknowns_refused_by_the_cap_are_recorded_as_such_not_failed(
    fake: FakeSmsbao, csv_file: Path
) -> None:
    fake.script = ["0", DROP]
    send_file(fake, csv_file)  # 99 accepted, 99 unknown, 52 never tried
    fake.script = ["53", "0"]  # the unknown batch had gone out: the server says 53
    code, output = send_file(fake, csv_file, "--retry-unknown")
    assert code == 0, output
    assert fake.requests[-2].params["m"].split(",") == NUMBERS[99:198]  # retried on their own
    assert fake.requests[-1].params["m"].split(",") == NUMBERS[198:]
    assert "batch 1/2 (99 numbers): refused by the cap (53)" in output
    assert "Done: 52 accepted, 0 failed, 0 unknown, 0 not tried." in output
    assert "99 number(s) re-sent after an unknown outcome were refused by the frequency" in output
    progress = Journal(journal_path(csv_file), message_key(TEXT)).load()
    assert sorted(progress.capped) == NUMBERS[99:198]

    sent = len(fake.requests)
    code, output = send_file(fake, csv_file, "--retry-unknown")  # later runs leave them alone
    assert code == 0, output
    assert len(fake.requests) == sent
    assert "151 already accepted, 0 unknown, 0 to send, 99 refused by the cap earlier" in output


def test_a_fresh_numbers_53_is_still_a_failure(fake: FakeSmsbao, csv_file: Path) -> None:
    fake.script = ["53"]
    code, output = send_file(fake, csv_file, "--retry-unknown")
    assert code == 1
    assert "Done: 151 accepted, 99 failed, 0 unknown, 0 not tried." in output
    assert Journal(journal_path(csv_file), message_key(TEXT)).load().capped == []


def test_help_says_what_retry_unknown_does_with_53() -> None:
    result = CliRunner().invoke(app(), ["send", "--help"], env={"COLUMNS": "200"})
    assert "recorded as refused by the cap, not failed" in " ".join(result.output.split())


def test_journal_records_are_fsynced_lines_keyed_by_the_message(
    fake: FakeSmsbao, csv_file: Path
) -> None:
    fake.script = ["0", DROP]
    send_file(fake, csv_file)
    records = [json.loads(line) for line in journal_path(csv_file).read_text().splitlines()]
    assert [r["state"] for r in records] == ["sending", "accepted", "sending", "unknown"]
    assert {r["key"] for r in records} == {message_key(TEXT)}
    assert TEXT not in journal_path(csv_file).read_text()
    progress = Journal(journal_path(csv_file), message_key(TEXT)).load()
    assert (len(progress.accepted), len(progress.unknown)) == (99, 99)


def test_a_torn_last_line_is_ignored(fake: FakeSmsbao, csv_file: Path) -> None:
    send_file(fake, csv_file)
    with journal_path(csv_file).open("a") as journal:
        journal.write('{"key": "abc", "sta')
    code, output = send_file(fake, csv_file)
    assert code == 0
    assert "0 to send" in output


def test_killed_mid_request_then_resumed_sends_no_number_twice(
    fake: FakeSmsbao, csv_file: Path
) -> None:
    """A real interruption: the process dies (SIGKILL) while batch 2 is on the wire."""
    fake.script = ["0", HOLD]
    script = "import typer; from smsgate.cli.client import register; " \
        "app = typer.Typer(); register(app); app()"  # fmt: skip
    args = ["send", "--server", fake.url, "-u", "alice", "-k", KEY, "--file", str(csv_file), TEXT]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert fake.arrived.wait(30), "the second batch never arrived"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    fake.release.set()
    code, output = send_file(fake, csv_file)
    assert "99 already accepted, 99 unknown, 52 to send" in output
    assert code == 1
    assert_no_number_twice(fake)
    assert fake.sent_numbers() == NUMBERS


def test_an_edited_file_still_sends_no_number_twice(fake: FakeSmsbao, csv_file: Path) -> None:
    fake.script = ["0", "41"]
    send_file(fake, csv_file)
    extra = [str(15000000000 + i) for i in range(30)]
    reshuffled = list(reversed(NUMBERS[:120])) + extra + NUMBERS[120:]
    csv_file.write_text("\n".join(reshuffled) + "\n", encoding="utf-8")
    code, output = send_file(fake, csv_file)
    assert code == 0, output
    assert "280 number(s) in numbers.csv: 99 already accepted, 0 unknown, 181 to send" in output
    assert_no_number_twice(fake)
    assert sorted(fake.sent_numbers()) == sorted(NUMBERS + extra)
