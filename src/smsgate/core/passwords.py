"""Credential hashing. The MD5 that clients send is a password equivalent, so at rest it
is kept only as an argon2id hash; ApiKeys are random and stored as SHA-256."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters

API_KEY_BYTES = 16  # 32 hex characters, the length of the `p` field on the wire


def hash_md5(md5_hex: str) -> str:
    return _HASHER.hash(md5_hex.lower())


def verify_md5(password_hash: str, md5_hex: str) -> bool:
    try:
        return _HASHER.verify(password_hash, md5_hex.lower())
    except (VerificationError, InvalidHashError):
        return False


def new_api_key() -> str:
    return secrets.token_hex(API_KEY_BYTES)
