"""Console sessions: a signed cookie, no server-side state.

The cookie is ``base64url(json payload) "." base64url(HMAC-SHA256(key, payload))``
(docs/decisions.md: a dozen lines of our own instead of a dependency). The payload says
who signed in (role and name), when the session ends, and the session's CSRF token,
which every form repeats. An anonymous visitor gets a session too (no role), so that
the sign-in form has its token like every other form.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

COOKIE = "smsgate_console"
CUSTOMER = "customer"
OPERATOR = "operator"
MIN_SECRET = 32


@dataclass(frozen=True, slots=True)
class Session:
    role: str  # "" (anonymous), CUSTOMER or OPERATOR
    user: str
    csrf: str
    expires: float  # epoch seconds

    @classmethod
    def anonymous(cls, now: float, lifetime: float) -> Session:
        return cls("", "", secrets.token_urlsafe(24), now + lifetime)

    def signed_in(self, role: str, user: str, now: float, lifetime: float) -> Session:
        # A new CSRF token at sign-in: a token seen before it is worth nothing after.
        return Session(role, user, secrets.token_urlsafe(24), now + lifetime)

    def csrf_ok(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf.encode(), given.encode())


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def dump(self, session: Session) -> str:
        payload = json.dumps(
            {"r": session.role, "u": session.user, "c": session.csrf, "e": session.expires},
            separators=(",", ":"),
        ).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def load(self, cookie: str | None, now: float) -> Session | None:
        """The session if the cookie is ours, intact and not expired; None otherwise."""
        if not cookie or cookie.count(".") != 1:
            return None
        body, mac = cookie.split(".")
        try:
            payload = _unb64(body)
            ok = hmac.compare_digest(_unb64(mac), self._mac(payload))
            data = json.loads(payload) if ok else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        try:
            session = Session(str(data["r"]), str(data["u"]), str(data["c"]), float(data["e"]))
        except (KeyError, TypeError, ValueError):
            return None
        return session if session.expires > now else None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, b"console-session\0" + payload, hashlib.sha256).digest()


def secret_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else one kept in the data directory (made on first use, 0600)."""
    if configured:
        if len(configured) < MIN_SECRET:
            raise ValueError(f"console_secret must be at least {MIN_SECRET} characters")
        return configured.encode()
    path = data_dir / "console.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another worker made it first
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.close(fd)
    return path.read_text(encoding="ascii").strip().encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
