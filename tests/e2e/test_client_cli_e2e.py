"""`smsgate send` and `smsgate balance` (the SDK's command line) against the real server.

Single sends with a password, an ApiKey or credentials from the environment; the balance
query and its once-a-minute rule; every failure as one line on stderr and exit 1; and
`send --file`: a CSV of 1,000 numbers interrupted twice (Ctrl-C while a request is held
before the server, kill -9 after the server accepted a request whose answer is lost), the
server itself killed and restarted, then resumed: no number gets the message twice, checked
against the server's database and against every request that reached it. Another bulk run
goes past a bad number (51), stops when the balance runs out (41) and finishes after a top-up
and a fix; a send whose answer is lost (timeout) is reported unknown, journalled `unknown`
and never sent again.

The interruptions are exact, not timed: the CLI talks to the server through a `Valve`
(client_support.py) that forwards, holds or swallows each request as the test says.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from smsgate import errors
from smsgate.client import Client
from tests.e2e.accounts_support import Provisioner
from tests.e2e.client_support import FORWARD, HOLD, SWALLOW, Valve, journal
from tests.e2e.send_support import (
    SEND_ENV,
    Numbers,
    books,
    content,
    stored_messages,
)
from tests.e2e.server_support import Account, ServerProcess, free_port
from tests.support.waiting import wait_for

TRICKY = "命令行 a+b&c=d 100% #1 😀"
SUMMARY = (
    "{total} number(s) in {name}: {accepted} already accepted, {unknown} unknown, {todo} to send"
)
SMSGATE = (sys.executable, "-m", "smsgate")
DONE = "Done: {accepted} accepted, {failed} failed, {unknown} unknown, {not_tried} not tried."


@pytest.fixture(scope="module")
def shared_server_env() -> dict[str, str]:
    # per-number caps lifted; balance queries once a minute, as SMSBao
    return {**SEND_ENV, "SMSGATE_QUERY_INTERVAL_SECONDS": "60"}


def error_line(row: errors.ErrorCode) -> str:
    return f"Error {row.wire}: {row.message} ({row.message_zh})"


# -- single sends and the balance ------------------------------------------------------------


def test_send_and_balance_with_a_password_an_api_key_or_the_environment(
    shared_server: ServerProcess, provisioner: Provisioner, numbers: Numbers
) -> None:
    acct = provisioner.account(balance=100)
    url, name = shared_server.url, acct.username
    a, b, c, d = numbers.many(4)
    t1, t2, t3 = (content(TRICKY) for _ in range(3))
    by_password, by_key = shared_server.cli_many(
        ["send", "--server", url, "-u", name, "-p", acct.password, a, t1],
        ["send", "--server", url, "-u", name, "-k", acct.api_key, "-g", "general", f"{b},{c}", t2],
    )
    from_env = shared_server.cli(
        "send",
        d,
        t3,
        env={"SMSGATE_SERVER": url, "SMSGATE_USER": name, "SMSGATE_API_KEY": acct.api_key},
    )
    assert by_password.stdout == "Accepted: 1 number(s)\n"
    assert by_key.stdout == "Accepted: 2 number(s)\n"
    assert from_env.stdout == "Accepted: 1 number(s)\n"
    rows = stored_messages(shared_server, name)
    assert sorted((r["phone"], r["content"]) for r in rows) == sorted(
        [(a, t1), (b, t2), (c, t2), (d, t3)]
    )

    balance = shared_server.cli("balance", "--server", url, "-u", name, "-k", acct.api_key)
    assert balance.stdout == "sent 4, remaining 96\n"
    again = shared_server.cli(
        "balance", "--server", url, "-u", name, "-p", acct.password, check=False
    )
    assert (again.returncode, again.stdout) == (1, "")
    assert again.stderr == error_line(errors.QUERY_TOO_FREQUENT) + "\n"


# -- failures: one line, exit 1 --------------------------------------------------------------


@pytest.fixture(scope="module")
def failures(
    shared_server: ServerProcess,
    provisioner: Provisioner,
    numbers: Numbers,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[subprocess.CompletedProcess[str], str, list[tuple[str, object]]]]:
    """Every failing command, run once (concurrently): name -> (result, the expected line,
    the (account, books) that must not have moved)."""
    steady, broke = provisioner.account(balance=100), provisioner.account(balance=0)
    url, phone = shared_server.url, numbers.one()
    down = f"http://127.0.0.1:{free_port()}"
    missing = tmp_path_factory.mktemp("csv") / "missing.csv"

    def send(acct: Account | str, *rest: str, server: str = url) -> list[str]:
        if isinstance(acct, str):
            return ["send", "--server", server, "-u", acct, "-p", "password", *rest]
        return ["send", "--server", server, "-u", acct.username, "-k", acct.api_key, *rest]

    key = ["-u", steady.username, "-k", "0" * 32]
    cases: dict[str, tuple[list[str], str]] = {
        "-1 empty text": (send(steady, phone, ""), error_line(errors.PARAMS_INCOMPLETE)),
        "30 wrong password": (
            ["send", "--server", url, "-u", steady.username, "-p", "wrong!", phone, content()],
            error_line(errors.BAD_CREDENTIALS),
        ),
        "30 balance, wrong key": (
            ["balance", "--server", url, *key],
            error_line(errors.BAD_CREDENTIALS),
        ),
        "30 no account": (
            send("nobody_here", phone, content()),
            error_line(errors.BAD_CREDENTIALS),
        ),
        "41 no balance": (send(broke, phone, content()), error_line(errors.INSUFFICIENT_BALANCE)),
        "51 bad number": (send(steady, "14012345678", content()), error_line(errors.BAD_PHONE)),
        "52 no signature": (send(steady, phone, "验证码4564"), error_line(errors.BAD_SIGNATURE)),
        "55 unknown product": (
            send(steady, "-g", "nosuch", phone, content()),
            error_line(errors.BAD_PRODUCT),
        ),
        "server down": (
            send(steady, phone, content(), server=down),
            "Error: GET /sms failed: ConnectError: [Errno 111] Connection refused",
        ),
        "no such file": (
            send(steady, "--file", str(missing), content()),
            f"Error: [Errno 2] No such file or directory: '{missing}'",
        ),
    }
    before = [(a.username, books(shared_server, a.username)) for a in (steady, broke)]
    results = shared_server.cli_many(*(cmd for cmd, _ in cases.values()), check=False)
    return {
        name: (result, line, before)
        for (name, (_, line)), result in zip(cases.items(), results, strict=True)
    }


CASES = (
    "-1 empty text",
    "30 wrong password",
    "30 balance, wrong key",
    "30 no account",
    "41 no balance",
    "51 bad number",
    "52 no signature",
    "55 unknown product",
    "server down",
    "no such file",
)


@pytest.mark.parametrize("case", CASES)
def test_a_failure_is_one_line_on_stderr_and_exit_1(
    shared_server: ServerProcess,
    failures: dict[str, tuple[subprocess.CompletedProcess[str], str, list[tuple[str, object]]]],
    case: str,
) -> None:
    result, line, before = failures[case]
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == line + "\n"
    for username, books_before in before:
        assert books(shared_server, username) == books_before


def test_a_send_that_times_out_is_reported_unknown_and_not_sent_again(
    shared_server: ServerProcess, provisioner: Provisioner, numbers: Numbers, tmp_path: Path
) -> None:
    """The server accepts the request, its answer is lost: one line saying the outcome is
    unknown, exit 1, one request only. With --file the journal says `unknown` and a re-run
    skips those numbers."""
    acct = provisioner.account(balance=1000)
    phone, text = numbers.one(), content()
    valve = Valve(shared_server.url)
    try:
        valve.plan(SWALLOW)
        login = ["--server", valve.url, "-u", acct.username, "-k", acct.api_key]
        lost = shared_server.cli("send", *login, "--timeout", "0.5", phone, text, check=False)
        assert (lost.returncode, lost.stdout) == (1, "")
        assert lost.stderr == (
            "Outcome unknown: GET /sms broke after the request was sent (ReadTimeout: timed out);"
            " it may have been accepted: check before sending again\n"
        )
        assert [r.action for r in valve.requests] == [SWALLOW]
        rows = stored_messages(shared_server, acct.username)
        assert [(r["phone"], r["content"]) for r in rows] == [(phone, text)]

        phones = numbers.many(150)
        csv = tmp_path / "numbers.csv"
        csv.write_text("\n".join(phones), encoding="utf-8")  # no header: the numbers only
        command = ["send", *login, "--timeout", "0.5", "--file", str(csv), content()]
        valve.plan(SWALLOW)
        first = shared_server.cli(*command, check=False)
        assert first.returncode == 1
        assert "batch 1/2 (99 numbers): Outcome unknown: GET /sms broke" in first.stdout
        assert "Stopping: the server is not answering properly." in first.stdout
        assert DONE.format(accepted=0, failed=0, unknown=99, not_tried=51) in first.stdout
        assert journal_steps(csv) == [("sending", 0, 99), ("unknown", 0, 99)]
        second = shared_server.cli(*command, check=False)
        assert second.returncode == 1  # the unknown ones are still unknown
        total = SUMMARY.format(total=150, name=csv.name, accepted=0, unknown=99, todo=51)
        assert total in second.stdout
        assert DONE.format(accepted=51, failed=0, unknown=99, not_tried=0) in second.stdout
        reached = [p for r in valve.requests[1:] for p in r.phones]
        assert sorted(reached) == sorted(phones)  # each number once
        rows = stored_messages(shared_server, acct.username)
        assert Counter(r["phone"] for r in rows) == Counter([phone, *phones])
    finally:
        valve.close()


# -- send --file --------------------------------------------------------------------------------


def write_csv(path: Path, phones: Sequence[str], header: str = "name,mobile") -> None:
    """A CSV as exported from a spreadsheet: a header, a name column, a repeated row and a
    blank line (the numbers are the `mobile` column; repeats are dropped)."""
    rows = [header, *(f"用户{i},{p}" for i, p in enumerate(phones))]
    rows.insert(40, f"重复,{phones[3]}")
    rows.insert(500, "")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def journal_steps(path: Path) -> list[tuple[str, int, int]]:
    """(state, batch, numbers) of each journal record."""
    return [(r["state"], r["batch"], len(r["phones"])) for r in journal(path)]


def batches(*sizes: int, unanswered: bool = False) -> list[tuple[str, int, int]]:
    """The journal of one run that sent batches of these sizes, each `sending` then
    `accepted`; with `unanswered` the last one has only its `sending` (the run died)."""
    steps = []
    for index, size in enumerate(sizes):
        steps.append(("sending", index, size))
        if not (unanswered and index == len(sizes) - 1):
            steps.append(("accepted", index, size))
    return steps


def test_send_file_of_1000_numbers_interrupted_and_resumed_sends_no_number_twice(
    shared_server: ServerProcess, provisioner: Provisioner, tmp_path: Path
) -> None:
    acct = provisioner.account(balance=2000)
    phones = [f"1380013{i:04d}" for i in random.sample(range(10_000), 1000)]
    csv = tmp_path / "numbers.csv"
    write_csv(csv, phones)
    text = content("会员日全场八折")
    valve = Valve(shared_server.url)
    # A long answer timeout: the held and swallowed requests end by signal, never by timing
    # out first on a slow machine.
    login = ["--server", valve.url, "-u", acct.username, "-k", acct.api_key, "--timeout", "120"]
    started: list[subprocess.Popen[str]] = []

    def cli(*flags: str) -> subprocess.Popen[str]:
        started.append(
            subprocess.Popen(
                [*SMSGATE, "send", *login, "--file", str(csv), *flags, text],
                env=shared_server.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                # Ctrl-C must reach it even when this suite runs as a background job,
                # which starts with SIGINT ignored (and children inherit that).
                preexec_fn=_default_sigint,
            )
        )
        return started[-1]

    def summary(accepted: int, unknown: int, todo: int) -> str:
        return SUMMARY.format(
            total=1000, name=csv.name, accepted=accepted, unknown=unknown, todo=todo
        )

    def stored() -> Counter[str]:
        return Counter(r["phone"] for r in stored_messages(shared_server, acct.username))

    try:
        # 1. Ctrl-C while the 4th request is held before the server: it never arrives.
        valve.plan(FORWARD, FORWARD, FORWARD, HOLD)
        run = cli()
        valve.wait_for(4)
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=30)
        assert run.returncode == 130, out + err
        assert err.splitlines()[-1] == "Interrupted: a request in flight may have been accepted."
        assert summary(0, 0, 1000) in out
        assert "batch 3/11 (99 numbers): accepted" in out
        held = valve.requests[3].phones
        valve.release()
        assert journal_steps(csv) == batches(99, 99, 99, 99, unanswered=True)
        assert sum(stored().values()) == 3 * 99

        # 2. kill -9 after the server accepted the 4th request, before its answer came back.
        valve.plan(FORWARD, FORWARD, FORWARD, SWALLOW)
        run = cli()
        valve.wait_for(8)
        assert wait_for(lambda: sum(stored().values()) == 7 * 99, timeout=10), (
            "not within 10 s: the swallowed batch stored"
        )
        run.kill()
        out, _ = run.communicate(timeout=30)
        assert run.returncode == -signal.SIGKILL
        assert summary(297, 99, 604) in out
        swallowed = valve.requests[7].phones
        valve.release()
        assert journal_steps(csv) == batches(99, 99, 99, 99, unanswered=True) * 2

        # The server crashes too: what it accepted survives.
        shared_server.kill()
        shared_server.start()
        assert sum(stored().values()) == 7 * 99

        # 3. Run again: only the numbers neither accepted nor of unknown outcome are sent.
        run = cli()
        out, err = run.communicate(timeout=60)
        assert run.returncode == 1, out + err
        assert summary(594, 198, 208) in out
        assert "batch 3/3 (10 numbers): accepted" in out
        assert DONE.format(accepted=208, failed=0, unknown=198, not_tried=0) in out
        assert "198 number(s) have an unknown outcome" in out
        died = batches(99, 99, 99, 99, unanswered=True)
        assert journal_steps(csv) == [*died, *died, *batches(99, 99, 10)]

        # No number reached the server twice, and each one that did has one message.
        reached = [p for r in valve.requests if r.action != HOLD for p in r.phones]
        assert len(reached) == len(set(reached)) == 1000 - 99
        assert set(reached) == set(phones) - set(held)
        assert {r.path for r in valve.requests} == {"/sms"}
        assert stored() == Counter(reached)
        accepted = {p for r in journal(csv) if r["state"] == "accepted" for p in r["phones"]}
        assert accepted == set(reached) - set(swallowed)
        assert {r["key"] for r in journal(csv)} == {journal(csv)[0]["key"]}

        # 4. As the CLI says: check the message log, then --retry-unknown. The log shows
        # the swallowed batch went out; re-sent, the server refuses it (53, same content
        # to the same number): recorded as refused by the cap, not failed. Only the held
        # batch is sent.
        with Client(acct.username, api_key=acct.api_key, base_url=shared_server.url) as sms:
            logged = {m["phone"] for m in sms.messages(limit=500)}
            page = sms.messages(limit=500)
            while page.next_cursor is not None:
                page = sms.messages(limit=500, cursor=page.next_cursor)
                logged |= {m["phone"] for m in page}
        assert set(swallowed) <= logged
        assert not set(held) & logged
        run = cli("--retry-unknown")
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, out + err
        assert summary(802, 0, 198) in out
        assert "batch 1/2 (99 numbers): accepted" in out
        assert "batch 2/2 (99 numbers): refused by the cap (53)" in out
        assert DONE.format(accepted=99, failed=0, unknown=0, not_tried=0) in out
        last = journal(csv)[-4:]
        assert [(r["state"], set(r["phones"])) for r in last] == [
            ("sending", set(held)),
            ("accepted", set(held)),
            ("sending", set(swallowed)),
            ("capped", set(swallowed)),
        ]
        assert last[-1]["error"].startswith("53: ")
        assert stored() == Counter(phones)  # every number exactly once
        b = books(shared_server, acct.username)
        assert (b.balance, b.sent, b.messages) == (1000, 1000, 1000)
    finally:
        for proc in started:  # only if the test failed half-way
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
        valve.close()
        if not shared_server.running:
            shared_server.start()


def test_send_file_goes_past_a_bad_number_stops_at_no_balance_and_finishes_once_fixed(
    shared_server: ServerProcess, provisioner: Provisioner, numbers: Numbers, tmp_path: Path
) -> None:
    """300 numbers, one invalid in the first batch, 150 units: the bad batch (51) does not
    stop the run, the empty balance (41) does. A top-up, then the bad number removed from the
    file: each run sends only what is left, every valid number gets the message once."""
    acct = provisioner.account(balance=150)
    good = numbers.many(299)
    csv = tmp_path / "客户.csv"

    def write(phones: list[str]) -> None:  # one column with a Chinese header, a BOM, a repeat
        csv.write_text("手机号\n" + "\n".join([*phones, phones[0], ""]), encoding="utf-8-sig")

    write([*good[:10], "14012345678", *good[10:]])
    command = ["send", "--server", shared_server.url, "-u", acct.username, "-p", acct.password]
    command += ["--file", str(csv), content("新品上市")]

    def summary(total: int, accepted: int, todo: int) -> str:
        return SUMMARY.format(total=total, name=csv.name, accepted=accepted, unknown=0, todo=todo)

    first = shared_server.cli(*command, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    assert summary(300, 0, 300) in first.stdout
    assert f"batch 1/4 (99 numbers): {error_line(errors.BAD_PHONE)}" in first.stdout
    assert "batch 2/4 (99 numbers): accepted" in first.stdout
    assert f"batch 3/4 (99 numbers): {error_line(errors.INSUFFICIENT_BALANCE)}" in first.stdout
    assert "Stopping: the next batches would fail the same way." in first.stdout
    assert DONE.format(accepted=99, failed=198, unknown=0, not_tried=3) in first.stdout
    assert journal_steps(csv) == [
        ("sending", 0, 99),
        ("failed", 0, 99),
        *batches(99, 99)[2:],  # batch 1 accepted
        ("sending", 2, 99),
        ("failed", 2, 99),
    ]
    assert books(shared_server, acct.username).balance == 150 - 99

    shared_server.cli("account", "topup", acct.username, "200")
    shared_server.wait_synced()
    second = shared_server.cli(*command, check=False)
    assert second.returncode == 1
    assert summary(300, 99, 201) in second.stdout
    assert DONE.format(accepted=102, failed=99, unknown=0, not_tried=0) in second.stdout

    write(good)  # the operator removes the bad number
    third = shared_server.cli(*command)
    assert summary(299, 201, 98) in third.stdout
    assert DONE.format(accepted=98, failed=0, unknown=0, not_tried=0) in third.stdout
    fourth = shared_server.cli(*command)  # nothing left to send
    assert summary(299, 299, 0) in fourth.stdout
    assert DONE.format(accepted=0, failed=0, unknown=0, not_tried=0) in fourth.stdout

    rows = stored_messages(shared_server, acct.username)
    assert Counter(r["phone"] for r in rows) == Counter(good)
    b = books(shared_server, acct.username)
    assert (b.balance, b.sent, b.ledger_sum) == (350 - 299, 299, 350 - 299)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
