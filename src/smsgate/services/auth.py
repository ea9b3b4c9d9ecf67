"""Who is calling: the account, credential, status and IP checks, in protocol order.

Order (protocol.md): account (40), credentials (30), expired/disabled (42), IP (43).

Failed logins are throttled where they come from, never where they point to, so that no
one can lock a customer out by guessing at their username (core/login_sources.py):

- per (username, source): ``per_account`` failures within the window;
- per source, all usernames: ``per_ip`` failures;
- per network: ``per_network`` failures lock the network's sources that failed
  themselves; a source of the network with no failure of its own is still heard.

A throttled caller gets 30 for every password, right or wrong, so a storm learns nothing.
An ApiKey (128 random bits, nothing to guess) is checked first and is never throttled.
Each password check is counted as a failure *before* it runs and taken back when it
succeeds, so a burst of parallel guesses cannot run more checks than the limit allows.
An unknown username costs the same argon2 check as a wrong password and, unless
``reveal_unknown`` is set, answers the same 30 (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from smsgate import errors
from smsgate.core import passwords
from smsgate.core.accounts import Account, api_key_hash, ip_allowed, is_usable, normalise_md5
from smsgate.core.login_sources import login_source
from smsgate.ports import Clock, Counters
from smsgate.services.snapshot import SnapshotHolder

# What an unknown username's guess is checked against, so it costs what a real one does.
_DUMMY_HASH = passwords.hash_md5(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: int = 10  # per (username, source)
    per_ip: int = 30  # per source, all usernames
    window_seconds: float = 300.0
    per_network: int = 100
    reveal_unknown: bool = False  # answer 40 (not 30) for an unknown username


class Authenticator:
    def __init__(
        self,
        snapshot: SnapshotHolder,
        counters: Counters,
        clock: Clock,
        limits: LoginLimits,
        on_throttled: Callable[[str], None] = lambda scope: None,  # metrics: "ip", "account"
    ) -> None:
        self._on_throttled = on_throttled
        self._snapshot = snapshot
        self._counters = counters
        self._clock = clock
        self._limits = limits
        self._lock = threading.Lock()  # the limit check and the reservation are one step
        # Verified MD5 values, remembered as HMACs under a per-process key, so that only
        # the first login after a start (or a password change) pays for argon2.
        self._mac_key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()

    def is_fast(self, username: str, p: str) -> bool:
        """False when authenticating may run argon2 (the caller moves it off the loop,
        through its bounded queue of password checks)."""
        account = self._snapshot.current.accounts.get(username)
        if account is not None and api_key_hash(p) in account.api_key_hashes:
            return True
        md5 = normalise_md5(p)
        if md5 is None:
            return True
        return account is not None and self._mac(account, md5) in self._verified

    def authenticate(self, username: str, p: str, ip: str) -> Account:
        account = self._snapshot.current.accounts.get(username)
        if account is not None and api_key_hash(p) in account.api_key_hashes:
            return self._usable_from(account, ip)
        keys = self._failure_keys(username, ip)
        md5 = normalise_md5(p)
        if account is not None and md5 is not None and self._mac(account, md5) in self._verified:
            self._check(keys)  # known good: nothing to reserve, one look at the limits
            return self._usable_from(account, ip)
        reserved_at = self._reserve(keys)
        if not self._password_ok(account, p):
            if account is None and self._limits.reveal_unknown:
                raise errors.Rejected(errors.NO_ACCOUNT, username)
            raise errors.Rejected(errors.BAD_CREDENTIALS)
        self._release(keys, reserved_at)
        assert account is not None
        return self._usable_from(account, ip)

    def sign_in(self, username: str, md5: str, ip: str) -> Account:
        """The console's customer sign-in: the password only (never an ApiKey), throttled
        together with the API's failures for the same name and source. The IP allowlist
        is not applied: it guards the API, and a customer must be able to fix it."""
        account = self._snapshot.current.accounts.get(username)
        if not self.attempt(username, ip, lambda: self._password_ok(account, md5)):
            raise errors.Rejected(errors.BAD_CREDENTIALS)
        assert account is not None
        if not is_usable(account, self._clock.now()):
            raise errors.Rejected(errors.ACCOUNT_INACTIVE)
        return account

    def attempt(self, username: str, ip: str, check: Callable[[], bool]) -> bool:
        """Run a password ``check`` under the failed-login throttles; Rejected (30) when
        the caller is throttled, else what the check says (a failure is counted)."""
        keys = self._failure_keys(username, ip)
        reserved_at = self._reserve(keys)
        if not check():
            return False
        self._release(keys, reserved_at)
        return True

    def authenticate_api_key(self, key: str, ip: str) -> Account:
        """The JSON API's Bearer ApiKey: the key alone names the account."""
        account = self._snapshot.current.by_api_key.get(api_key_hash(key))
        if account is None:
            raise errors.Rejected(errors.BAD_CREDENTIALS, "unknown ApiKey")
        return self._usable_from(account, ip)

    def _usable_from(self, account: Account, ip: str) -> Account:
        if not is_usable(account, self._clock.now()):
            raise errors.Rejected(errors.ACCOUNT_INACTIVE)
        if not ip_allowed(account.allowlist, ip):
            raise errors.Rejected(errors.IP_NOT_ALLOWED, ip)
        return account

    def _password_ok(self, account: Account | None, p: str) -> bool:
        md5 = normalise_md5(p)
        if md5 is None:
            return False
        if account is None:
            passwords.verify_md5(_DUMMY_HASH, md5)  # the same cost as a real account's
            return False
        mac = self._mac(account, md5)
        if mac in self._verified:
            return True
        if passwords.verify_md5(account.password_hash, md5):
            self._verified.add(mac)
            return True
        return False

    def _mac(self, account: Account, md5: str) -> bytes:
        message = f"{account.id}\0{account.password_hash}\0{md5}".encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()

    # -- failed-login throttles ------------------------------------------------------

    def _failure_keys(self, username: str, ip: str) -> tuple[str, str, str]:
        source, network = login_source(ip)
        return (
            f"login-fail:user:{source}\0{username}",
            f"login-fail:source:{source}",
            f"login-fail:network:{network}",
        )

    def _check(self, keys: tuple[str, str, str]) -> None:
        """Refuse a throttled caller (counting nothing)."""
        now = self._clock.now().timestamp()
        since = now - self._limits.window_seconds
        self._refuse_if_throttled(self._counters.count_and_record(keys, since, now, 1.0, 0))

    def _reserve(self, keys: tuple[str, str, str]) -> float:
        """Refuse a throttled caller, else count this attempt as a failure until it succeeds
        (the time of the reservation is returned, to take it back with). Counting and
        looking are one step, so concurrent guesses on several nodes see each other."""
        window = self._limits.window_seconds
        with self._lock:
            now = self._clock.now().timestamp()
            counts = self._counters.count_and_record(keys, now - window, now, window)
            try:
                self._refuse_if_throttled(counts)
            except errors.Rejected:
                self._release(keys, now)
                raise
        return now

    def _refuse_if_throttled(self, counts: list[int]) -> None:
        """``counts``: the failures by user, by source and by network before this one."""
        by_user, by_source, by_network = counts
        limits = self._limits
        if by_user >= limits.per_account or by_source >= limits.per_ip:
            self._on_throttled("account" if by_user >= limits.per_account else "ip")
            raise errors.Rejected(errors.BAD_CREDENTIALS, "too many failed logins")
        if by_source and by_network >= limits.per_network:
            self._on_throttled("network")
            raise errors.Rejected(errors.BAD_CREDENTIALS, "too many failed logins")

    def _release(self, keys: tuple[str, str, str], reserved_at: float) -> None:
        # Dated like the reservation, so both are forgotten together.
        window = self._limits.window_seconds
        self._counters.count_and_record(keys, reserved_at, reserved_at, window, count=-1)
