"""Reply pushes end to end: the real server process, real HTTP receivers on loopback, the
schedule shortened by settings (1.2 s, 3 s, 6 s; a 6 s pause after 10 failures).

Receivers answer `0`, `ok`, 500, hang past the timeout, or are down and come up later.
Times are observed on the receivers' side (when each request arrived) and compared with
the schedule within TOLERANCE; the server polls its queue every 0.2 s.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from smsgate.database import Database
from smsgate.settings import Settings
from smsgate.store import tables as t
from tests.e2e.server_support import Account, ServerProcess, unique_name
from tests.receivers import ALLOW_RECEIVERS, Hit, Receiver
from tests.support.waiting import wait_for

OFFSETS = (0.0, 1.2, 3.0, 6.0)  # SMSGATE_PUSH_RETRY_MINUTES=0.02,0.05,0.1
PAUSE = 6.0  # SMSGATE_PUSH_PAUSE_MINUTES=0.1
TIMEOUT = 1.0  # SMSGATE_PUSH_TIMEOUT_SECONDS
TOLERANCE = 0.6
PHONE = "13800138000"
TRICKY = "回复：好的 😀👍🏽 a&b=c+d 100% %E4%BD%A0\n第二行\r\n#?"

PUSH_ENV = {
    "SMSGATE_PUSH_RETRY_MINUTES": "0.02,0.05,0.1",
    "SMSGATE_PUSH_PAUSE_AFTER_FAILURES": "10",
    "SMSGATE_PUSH_FAILURE_WINDOW_MINUTES": "1",
    "SMSGATE_PUSH_PAUSE_MINUTES": "0.1",
    "SMSGATE_PUSH_TIMEOUT_SECONDS": str(TIMEOUT),
    # A push claimed by a killed PostgreSQL node is taken over after this long.
    "SMSGATE_CLAIM_LEASE_SECONDS": "3",
}


@pytest.fixture
def server_env() -> dict[str, str]:
    return dict(PUSH_ENV)


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Every receiver a test makes is stopped at teardown."""
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.stop()


def receiver(made: list[Receiver], *args: object, start: bool = True, **kw: object) -> Receiver:
    r = Receiver(*args, **kw)  # type: ignore[arg-type]
    made.append(r)
    return r.start() if start else r


def accounts_with_urls(server: ServerProcess, urls: list[str]) -> list[tuple[Account, str]]:
    """An account per URL, each with its own extended code; returns (account, code).

    Made through the admin service on the server's database, as the CLI would, but in
    this process: one CLI process per account costs seconds on a busy machine.
    """
    gateway = Database.open(
        Settings(
            data_dir=server.data_dir,
            database_url=server.database_url,
            push_allowed_targets=[ALLOW_RECEIVERS],
        )
    )
    made = []
    try:
        for index, url in enumerate(urls):
            name, password, code = unique_name("mo"), secrets.token_urlsafe(12), str(10 + index)
            key = gateway.admin.create_account(name, password).api_key
            gateway.admin.configure(name, mo_url=url, ext_code=code)
            made.append((Account(name, password, key), code))
    finally:
        gateway.close()
    server.wait_synced()
    return made


def simulate_replies(server: ServerProcess, replies: list[tuple[str, str]]) -> None:
    """(phone, destination) replies with TRICKY content, as `smsgate simulate reply` writes
    them, but in this process (fast: the server may be down meanwhile)."""
    gateway = Database.open(
        Settings(
            data_dir=server.data_dir,
            database_url=server.database_url,
            push_allowed_targets=[ALLOW_RECEIVERS],
        )
    )
    try:
        for phone, dest in replies:
            assert gateway.inbound.simulate(phone, TRICKY, dest).account is not None
    finally:
        gateway.close()


def api(server: ServerProcess, account: Account) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {account.api_key}"}, timeout=10
    )


def inject(server: ServerProcess, account: Account, content: str = TRICKY) -> int:
    """A user reply to the account's messages, through the JSON API."""
    with api(server, account) as client:
        response = client.post("/v1/simulator/replies", json={"phone": PHONE, "content": content})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def reply(server: ServerProcess, account: Account, reply_id: int) -> dict[str, object]:
    with api(server, account) as client:
        response = client.get(f"/v1/replies/{reply_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def push(server: ServerProcess, account: Account, reply_id: int) -> dict[str, object]:
    found = reply(server, account, reply_id)["push"]
    assert isinstance(found, dict)
    return found


def push_state(server: ServerProcess, account: Account, reply_id: int) -> str:
    return str(push(server, account, reply_id)["state"])


def offsets(hits: list[Hit]) -> list[float]:
    return [round(h.at - hits[0].at, 2) for h in hits]


def assert_schedule(hits: list[Hit], expected: tuple[float, ...] = OFFSETS) -> None:
    seen = offsets(hits)
    assert len(seen) == len(expected), seen
    assert all(abs(s - e) <= TOLERANCE for s, e in zip(seen, expected, strict=True)), seen


def assert_exact(hit: Hit, content: str = TRICKY) -> None:
    assert hit.raw_c == content.encode("utf-8")
    assert hit.c == content
    assert hit.m == PHONE


def circuit(server: ServerProcess, username: str) -> tuple[datetime | None, datetime | None]:
    """(paused_until, counted_since) as the server stored them."""
    c, a = t.push_circuit, t.accounts
    with server.engine.connect() as conn:
        row = conn.execute(
            sa.select(c.c.paused_until, c.c.counted_since)
            .join(a, a.c.id == c.c.account_id)
            .where(a.c.username == username)
        ).first()
    return (None, None) if row is None else (row.paused_until, row.counted_since)


def failures_until(server: ServerProcess, username: str, until: datetime | None) -> int:
    """How many failed attempts to the account's URL were stored at or before ``until``."""
    pa, a = t.push_attempts, t.accounts
    with server.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(pa.join(a, a.c.id == pa.c.account_id))
                .where(a.c.username == username, pa.c.ok.is_(False), pa.c.at <= until)
            ).scalar_one()
        )


def epoch(value: datetime | None) -> float:
    assert value is not None
    return value.replace(tzinfo=value.tzinfo or UTC).timestamp()


# -- receivers of every kind --------------------------------------------------------------


def test_every_kind_of_receiver_on_the_smsbao_schedule(
    server: ServerProcess, receivers: list[Receiver]
) -> None:
    hang = receiver(receivers, "0", hang=TIMEOUT + 2)
    good = receiver(receivers, "0")
    wrong = receiver(receivers, "ok")
    broken = receiver(receivers, "0", 500)
    down = receiver(receivers, "0", start=False)
    (h, _), (g, g_code), (w, _), (b, _), (d, _) = accounts_with_urls(
        server,
        [hang.url(), good.url("/mo?token=t%2B1"), wrong.url(), broken.url(), down.url()],
    )
    ids = {k: inject(server, a) for k, a in zip("hgwbd", (h, g, w, b, d), strict=True)}
    injected = time.time()

    # A URL that hangs holds only its own pushes: the good one is pushed at once.
    [first] = good.wait_for(1, timeout=2)
    assert first.at - injected < 1.0
    assert_exact(first)
    assert first.params["token"] == "t+1"

    # The URL that was down comes up after its first attempt failed; the retry gets it.
    assert wait_for(lambda: reply(server, d, ids["d"])["attempts"] != [], timeout=3), (
        "not within 3 s: first attempt to a down URL"
    )
    down.start()

    # Meanwhile, the CLI: `simulate reply` writes to the database and the running server
    # pushes it; a reply nobody can be found for is kept and listed.
    said, lost = server.cli_many(
        ["simulate", "reply", PHONE, "TD", "--to", g_code],
        ["simulate", "reply", "13900139000", "who is this?"],
    )
    assert "now opted out" in said.stdout
    assert "unmatched" in lost.stdout
    listed = server.cli("mo", "list", "--unmatched").stdout
    assert "13900139000" in listed
    assert "who is this?" in listed
    [_, cli_hit] = good.wait_for(2, timeout=3)
    assert_exact(cli_hit, "TD")

    for r in (hang, wrong, broken):
        r.wait_for(4, timeout=OFFSETS[-1] + TIMEOUT + 3)
    for acct, key in ((h, "h"), (w, "w"), (b, "b")):
        assert wait_for(
            lambda a=acct, k=key: push_state(server, a, ids[k]) == "failed", timeout=3
        ), "not within 3 s: failed"
    for r in (hang, wrong, broken):
        assert_schedule(r.hits)
        for hit in r.hits:
            assert_exact(hit)
    assert len(good.hits) == 2

    [up] = down.hits
    assert_exact(up)
    detail = reply(server, d, ids["d"])
    attempts = detail["attempts"]
    assert isinstance(attempts, list)
    assert [a["ok"] for a in attempts] == [False, True]
    started = [datetime.fromisoformat(a["started_at"]).timestamp() for a in attempts]
    assert abs(started[1] - started[0] - OFFSETS[1]) <= TOLERANCE
    errors = {k: push(server, a, ids[k])["last_error"] for k, a in (("h", h), ("w", w), ("b", b))}
    assert errors == {
        "h": "no answer: timeout or connection error",
        "w": "HTTP 200 with an answer other than 0 (2 characters)",
        "b": "HTTP 500",
    }

    # A failed reply stays visible and can be pushed again: JSON API and CLI.
    wrong.body, broken.status = "0", 200
    with api(server, w) as client:
        again = client.post(f"/v1/replies/{ids['w']}/repush")
    assert again.status_code == 200, again.text
    assert again.json()["push"]["series"] == 2
    server.cli("mo", "repush", str(ids["b"]))
    wrong.wait_for(5, timeout=3)
    broken.wait_for(5, timeout=3)
    assert wait_for(lambda: push_state(server, b, ids["b"]) == "succeeded", timeout=3), (
        "not within 3 s: re-pushed by the CLI"
    )
    assert wait_for(lambda: push_state(server, w, ids["w"]) == "succeeded", timeout=3), (
        "not within 3 s: re-pushed by the API"
    )
    assert push(server, b, ids["b"])["series"] == 2
    check_the_json_api(server, g, h, ids["w"])


def check_the_json_api(server: ServerProcess, g: Account, h: Account, not_gs: int) -> None:
    """List, filters, cursor, and the errors, for `g` (two replies, both pushed)."""
    with api(server, g) as client:
        first = client.get("/v1/replies", params={"limit": 1}).json()
        assert first["items"][0]["content"] == "TD"  # newest first
        rest = client.get("/v1/replies", params={"limit": 1, "cursor": first["next_cursor"]})
        assert [r["content"] for r in rest.json()["items"]] == [TRICKY]
        assert rest.json()["next_cursor"] is None
        by = {
            f"{k}={v}": len(client.get("/v1/replies", params={k: v}).json()["items"])
            for k, v in (("state", "succeeded"), ("state", "failed"), ("phone", PHONE))
        }
        assert by == {"state=succeeded": 2, "state=failed": 0, f"phone={PHONE}": 2}
        assert client.get(f"/v1/replies/{not_gs}").status_code == 404  # another account's
        bad = client.post("/v1/simulator/replies", json={"phone": "nope", "content": "x"})
        assert (bad.status_code, bad.json()["code"]) == (422, "invalidinput")
    assert httpx.get(f"{server.url}/v1/replies").status_code == 401
    busy = inject(server, h)  # h's URL hangs: the push stays pending for the timeout
    with api(server, h) as client:
        conflict = client.post(f"/v1/replies/{busy}/repush")
    assert (conflict.status_code, conflict.json()["code"]) == (409, "conflict")


# -- the circuit --------------------------------------------------------------------------


def test_ten_failures_pause_the_account_and_the_pause_ends_on_time(
    server: ServerProcess, receivers: list[Receiver]
) -> None:
    broken = receiver(receivers, "0", 500)
    other = receiver(receivers, "0")
    (alice, _), (bob, _) = accounts_with_urls(server, [broken.url(), other.url()])
    first = [inject(server, alice, f"#{i} {TRICKY}") for i in range(10)]
    broken.wait_for(10, timeout=3)
    assert wait_for(lambda: circuit(server, alice.username)[0] is not None, timeout=3), (
        "not within 3 s: a pause"
    )
    paused_until, since = circuit(server, alice.username)
    assert epoch(paused_until) - epoch(since) == pytest.approx(PAUSE)
    assert failures_until(server, alice.username, since) == 10  # the 10th began it, not the 9th

    late = inject(server, alice, "arrived during the pause")
    bobs = inject(server, bob)
    other.wait_for(1, timeout=2)  # another account is not paused
    assert push_state(server, alice, late) == "pending"
    broken.status = 200
    broken.wait_for(11, timeout=epoch(paused_until) - time.time() + 2)
    resumed = broken.hits[10].at
    assert epoch(paused_until) <= resumed <= epoch(paused_until) + TOLERANCE
    assert all(h.at < epoch(since) + 0.5 for h in broken.hits[:10])

    broken.wait_for(11 + len(first), timeout=3)
    for reply_id in (*first, late):
        assert wait_for(
            lambda r=reply_id: push_state(server, alice, r) == "succeeded", timeout=3
        ), "not within 3 s: after pause"
    assert push(server, alice, late)["attempts"] == 1
    assert push_state(server, bob, bobs) == "succeeded"


# -- restarts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "server_env", [{**PUSH_ENV, "SMSGATE_PUSH_PAUSE_MINUTES": "0.15"}], indirect=True
)
def test_nothing_is_lost_across_kill_9(server: ServerProcess, receivers: list[Receiver]) -> None:
    """A 9 s pause here, so that the restart surely happens inside it."""
    broken = receiver(receivers, "0", 500)  # alice: paused when the server dies
    wrong = receiver(receivers, "ok")  # carol: in the middle of her retries
    good = receiver(receivers, "0")  # dave: gets a reply while the server is down
    (alice, a_code), (carol, _), (_, d_code) = accounts_with_urls(
        server, [broken.url(), wrong.url(), good.url()]
    )
    paused_ids = [inject(server, alice) for _ in range(10)]
    carols = inject(server, carol)
    broken.wait_for(10, timeout=3)
    assert wait_for(lambda: push(server, carol, carols)["attempts"] == 1, timeout=3), (
        "not within 3 s: carol's first attempt"
    )
    assert wait_for(lambda: circuit(server, alice.username)[0] is not None, timeout=3), (
        "not within 3 s: a pause"
    )
    paused_until, _ = circuit(server, alice.username)

    server.kill()
    # Replies stored while no server runs, straight into the database.
    simulate_replies(server, [(PHONE, a_code), ("+86" + PHONE, d_code)])
    broken.status, wrong.body = 200, "0"
    server.start()
    assert time.time() < epoch(paused_until) - 1  # the restart happened inside the pause

    good.wait_for(1, timeout=3 + 3)  # PostgreSQL: after the claim lease, if one was held
    assert_exact(good.hits[0])
    wrong.wait_for(2, timeout=3)
    assert wait_for(lambda: push_state(server, carol, carols) == "succeeded", timeout=3), (
        "not within 3 s: carol's retry"
    )
    resumed = push(server, carol, carols)
    assert resumed["series"] == 1  # the same series, resumed where it was
    assert resumed["attempts"] in (2, 3, 4)  # missed retries are made at once, not skipped

    assert broken.count() == 10  # still paused after the restart (the 11th: at its end)
    broken.wait_for(10 + 11, timeout=epoch(paused_until) - time.time() + 4)
    assert broken.hits[10].at >= epoch(paused_until)
    for hit in broken.hits:
        assert hit.m == PHONE
    assert {hit.raw_c for hit in broken.hits} == {TRICKY.encode("utf-8")}
    for reply_id in paused_ids:
        assert wait_for(
            lambda r=reply_id: push_state(server, alice, r) == "succeeded", timeout=3
        ), "not within 3 s: all pushed"
    with server.engine.connect() as conn:
        states = conn.execute(
            sa.select(t.pushes.c.state, sa.func.count()).group_by(t.pushes.c.state)
        ).all()
    assert dict(states) == {"succeeded": 11 + 1 + 1}  # type: ignore[arg-type]
