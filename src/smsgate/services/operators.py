"""Console operators: created on the server (`smsgate operator create`), signed in with
a password kept like an account's (argon2id of its MD5 hex)."""

from __future__ import annotations

import secrets

from smsgate import errors
from smsgate.core import passwords
from smsgate.core.accounts import password_md5, validate_username
from smsgate.core.reports import Operator
from smsgate.ports import Clock, ConsoleStore

# What an unknown operator name's guess is checked against, so it costs what a real one does.
_DUMMY_HASH = passwords.hash_md5(secrets.token_hex(16))


class OperatorService:
    def __init__(self, store: ConsoleStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, username: str, password: str) -> None:
        validate_username(username)
        if len(password) < 8 or len(password) > 128:
            raise errors.InvalidInput("an operator's password is 8-128 characters")
        self._store.create_operator(
            username, passwords.hash_md5(password_md5(password)), self._clock.now()
        )

    def verify(self, username: str, password: str) -> Operator | None:
        """The operator if the password is right; None otherwise (same cost either way)."""
        found = self._store.operator(username)
        md5 = password_md5(password)
        if found is None:
            passwords.verify_md5(_DUMMY_HASH, md5)
            return None
        return found if passwords.verify_md5(found.password_hash, md5) else None
