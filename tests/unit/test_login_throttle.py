"""Failed-login throttles that protect an account without handing attackers a weapon.

Issue findings 1, 2 and 8: ten wrong passwords from anywhere used to lock every caller of
that username out (the right ApiKey from elsewhere included), unknown usernames answered
40, a burst of parallel guesses ran more checks than the limits allow, and the failure
counters were never forgotten.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from smsgate import errors
from smsgate.core import passwords
from smsgate.core.accounts import Account, AccountStatus, api_key_hash, password_md5
from smsgate.core.login_sources import login_source
from smsgate.counters.memory import SWEEP_FLOOR as SWEEP_EVERY
from smsgate.counters.memory import MemoryCounters
from smsgate.ports import Counters
from smsgate.services.auth import Authenticator, LoginLimits
from smsgate.services.snapshot import Snapshot
from tests.support.clock import ManualClock

PASSWORD = "correct horse"
API_KEY = "k" * 32
WRONG = password_md5("wrong")
LIMITS = LoginLimits(per_account=10, per_ip=30, window_seconds=300.0, per_network=100)


def _account() -> Account:
    return Account(
        id=1,
        username="alice",
        password_hash=passwords.hash_md5(password_md5(PASSWORD)),
        status=AccountStatus.ACTIVE,
        expires_at=None,
        allowlist=(),
        api_key_hashes=frozenset({api_key_hash(API_KEY)}),
    )


ALICE = _account()


def _auth(
    counters: Counters, limits: LoginLimits = LIMITS, clock: ManualClock | None = None
) -> Authenticator:
    account = ALICE
    snapshot = Snapshot(
        rev=1,
        accounts={account.username: account},
        by_api_key={api_key_hash(API_KEY): account},
    )
    holder = SimpleNamespace(current=snapshot)
    return Authenticator(holder, counters, clock or ManualClock(), limits)  # type: ignore[arg-type]


def _code(auth: Authenticator, username: str, p: str, ip: str) -> str:
    try:
        auth.authenticate(username, p, ip)
    except errors.Rejected as rejected:
        return rejected.code.wire
    return "0"


def _hammer(auth: Authenticator, ip: str, times: int, username: str = "alice") -> None:
    for _ in range(times):
        assert _code(auth, username, WRONG, ip) == "30"


def test_an_attacker_locks_only_their_own_address(counters: Counters) -> None:
    auth = _auth(counters)
    _hammer(auth, "203.0.113.7", 10)
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.7") == "30"  # throttled
    assert _code(auth, "alice", password_md5(PASSWORD), "198.51.100.1") == "0"
    assert _code(auth, "alice", API_KEY, "198.51.100.1") == "0"


def test_an_api_key_is_never_throttled(counters: Counters) -> None:
    auth = _auth(counters)
    _hammer(auth, "203.0.113.7", 40)
    assert _code(auth, "alice", API_KEY, "203.0.113.7") == "0"
    assert auth.authenticate_api_key(API_KEY, "203.0.113.7") is ALICE


def test_a_clean_neighbour_is_heard_when_the_network_is_locked(counters: Counters) -> None:
    auth = _auth(
        counters, LoginLimits(per_account=3, per_ip=3, window_seconds=300.0, per_network=6)
    )
    for host in range(1, 4):  # three addresses of one /24 reach the network's limit
        _hammer(auth, f"203.0.113.{host}", 2, username=f"guess{host}")
    _hammer(auth, "203.0.113.4", 1)
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.4") == "30"  # failed itself
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.5") == "0"  # clean
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.114.4") == "0"  # next network


def test_an_ipv6_attacker_cannot_rotate_addresses_within_a_64(counters: Counters) -> None:
    auth = _auth(counters)
    for i in range(10):
        assert _code(auth, "alice", WRONG, f"2001:db8:1:2::{i + 1:x}") == "30"
    assert _code(auth, "alice", password_md5(PASSWORD), "2001:db8:1:2::ffff") == "30"
    assert _code(auth, "alice", password_md5(PASSWORD), "2001:db8:1:3::1") == "0"


def test_unknown_username_answers_like_a_wrong_password(counters: Counters) -> None:
    auth = _auth(counters)
    assert _code(auth, "nobody", WRONG, "203.0.113.7") == "30"
    assert _code(auth, "alice", WRONG, "203.0.113.8") == "30"
    reveal = LoginLimits(per_account=10, per_ip=30, window_seconds=300.0, reveal_unknown=True)
    assert _code(_auth(counters, reveal), "nobody", WRONG, "203.0.113.7") == "40"


def test_unknown_username_costs_a_password_check(counters: Counters) -> None:
    auth = _auth(counters)
    assert not auth.is_fast("nobody", WRONG)  # argon2 as for a real account: no timing oracle
    assert auth.is_fast("nobody", "not-an-md5")


def test_a_burst_of_parallel_guesses_runs_no_more_checks_than_the_limit(counters: Counters) -> None:
    auth = _auth(counters)
    checks = 0
    lock = threading.Lock()
    real_verify = passwords.verify_md5

    def counting_verify(password_hash: str, md5: str) -> bool:
        nonlocal checks
        with lock:
            checks += 1
        return real_verify(password_hash, md5)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "verify_md5", counting_verify)
        with ThreadPoolExecutor(max_workers=40) as pool:
            codes = list(pool.map(lambda _: _code(auth, "alice", WRONG, "203.0.113.7"), range(60)))
    assert codes == ["30"] * 60
    assert checks == 10


def test_a_success_gives_back_its_reservation(counters: Counters) -> None:
    auth = _auth(counters, LoginLimits(per_account=3, per_ip=30, window_seconds=300.0))
    for _ in range(20):
        assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.7") == "0"
    _hammer(auth, "203.0.113.7", 2)
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.7") == "0"


def test_the_lock_ends_with_the_window(counters: Counters) -> None:
    clock = ManualClock()
    auth = _auth(counters, clock=clock)
    _hammer(auth, "203.0.113.7", 10)
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.7") == "30"
    clock.advance(301)
    assert _code(auth, "alice", password_md5(PASSWORD), "203.0.113.7") == "0"


@pytest.mark.parametrize(
    ("ip", "source", "network"),
    [
        ("203.0.113.7", "203.0.113.7", "203.0.113.0/24"),
        ("::ffff:203.0.113.7", "203.0.113.7", "203.0.113.0/24"),
        ("2001:db8:1:2::7", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("testclient", "peer:testclient", "peer:testclient"),
    ],
)
def test_login_sources(ip: str, source: str, network: str) -> None:
    assert login_source(ip) == (source, network)


def test_failure_counters_are_forgotten() -> None:
    counters = MemoryCounters()
    for i in range(SWEEP_EVERY * 3):
        counters.record(f"login-fail:source:{i}", at=float(i), keep_for=10.0)
        counters.take_slot(f"query:{i}", at=float(i), interval=10.0)
    assert len(counters) <= 2 * (SWEEP_EVERY + 40)  # not the 6,144 keys written
    assert counters.hits_since(f"login-fail:source:{SWEEP_EVERY * 3 - 1}", 0.0) == 1
