"""Who is calling: the account, credential, status and IP checks, in protocol order.

Order (protocol.md): account (40), credentials (30), expired/disabled (42), IP (43).
Failed logins are limited per account and per source address; once a limit is hit
every answer is 30, even for the right password or an unknown account, so a
credential storm learns nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from smsgate import errors
from smsgate.core import passwords
from smsgate.core.accounts import Account, api_key_hash, ip_allowed, is_usable, normalise_md5
from smsgate.ports import Clock, Counters
from smsgate.services.snapshot import SnapshotHolder


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: int = 10
    per_ip: int = 30
    window_seconds: float = 300.0


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
        # Verified MD5 values, remembered as HMACs under a per-process key, so that only
        # the first login after a start (or a password change) pays for argon2.
        self._mac_key = secrets.token_bytes(32)
        self._verified: set[bytes] = set()

    def is_fast(self, username: str, p: str) -> bool:
        """False when authenticating would run argon2 (the caller may move it off-loop)."""
        account = self._snapshot.current.accounts.get(username)
        if account is None or api_key_hash(p) in account.api_key_hashes:
            return True
        md5 = normalise_md5(p)
        return md5 is None or self._mac(account, md5) in self._verified

    def authenticate(self, username: str, p: str, ip: str) -> Account:
        ip_key = f"login-fail:ip:{ip}"
        if self._locked(ip_key, self._limits.per_ip):
            raise errors.Rejected(errors.BAD_CREDENTIALS, "too many failed logins from this IP")
        account = self._snapshot.current.accounts.get(username)
        if account is None:
            self._record_failure(ip_key)
            raise errors.Rejected(errors.NO_ACCOUNT, username)
        account_key = f"login-fail:account:{account.id}"
        if self._locked(account_key, self._limits.per_account):
            raise errors.Rejected(errors.BAD_CREDENTIALS, "too many failed logins for this account")
        if not self._credentials_ok(account, p):
            self._record_failure(ip_key)
            self._record_failure(account_key)
            raise errors.Rejected(errors.BAD_CREDENTIALS)
        return self._usable_from(account, ip)

    def authenticate_api_key(self, key: str, ip: str) -> Account:
        """The JSON API's Bearer ApiKey: the key alone names the account."""
        ip_key = f"login-fail:ip:{ip}"
        if self._locked(ip_key, self._limits.per_ip):
            raise errors.Rejected(errors.BAD_CREDENTIALS, "too many failed logins from this IP")
        account = self._snapshot.current.by_api_key.get(api_key_hash(key))
        if account is None:
            self._record_failure(ip_key)
            raise errors.Rejected(errors.BAD_CREDENTIALS, "unknown ApiKey")
        return self._usable_from(account, ip)

    def _usable_from(self, account: Account, ip: str) -> Account:
        if not is_usable(account, self._clock.now()):
            raise errors.Rejected(errors.ACCOUNT_INACTIVE)
        if not ip_allowed(account.allowlist, ip):
            raise errors.Rejected(errors.IP_NOT_ALLOWED, ip)
        return account

    def _credentials_ok(self, account: Account, p: str) -> bool:
        # `p` may be an ApiKey or the MD5 of the password; both are 32 characters. Try both.
        if api_key_hash(p) in account.api_key_hashes:
            return True
        md5 = normalise_md5(p)
        if md5 is None:
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

    def _locked(self, key: str, limit: int) -> bool:
        since = self._clock.monotonic() - self._limits.window_seconds
        locked = self._counters.hits_since(key, since) >= limit
        if locked:
            self._on_throttled(key.split(":")[1])  # login-fail:<scope>:...
        return locked

    def _record_failure(self, key: str) -> None:
        self._counters.record(key, self._clock.monotonic(), self._limits.window_seconds)
