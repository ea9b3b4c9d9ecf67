"""Request signing of the cloud SMS providers, as their documentation specifies it.

Pure functions (no I/O, no clock): the carriers pass the time and nonce in, so the
published worked examples can be checked byte for byte (tests/unit/test_upstream_signing.py).

- Alibaba Cloud RPC signature V2 (``SignatureMethod=HMAC-SHA1``, ``SignatureVersion=1.0``):
  the parameters, sorted and percent-encoded (RFC 3986, UTF-8), form
  ``METHOD&%2F&<encoded canonical query>``; the signature is
  ``Base64(HMAC-SHA1(secret + "&", string_to_sign))``.
- Tencent Cloud API 3.0 ``TC3-HMAC-SHA256``: a canonical request (method, ``/``, query,
  the ``content-type`` and ``host`` headers, SHA-256 of the body), a string to sign with the
  credential scope ``<UTC date>/<service>/tc3_request``, and a key derived from the secret
  by three HMAC-SHA256 steps.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TC3_ALGORITHM = "TC3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Alibaba Cloud requires: only ``A-Z a-z 0-9 - _ . ~`` stay."""
    return quote(value, safe="-_.~")


def aliyun_canonical_query(params: Mapping[str, str]) -> str:
    """The sorted, encoded ``k=v&...`` of every parameter but ``Signature``."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    return (
        f"{method.upper()}&{percent_encode('/')}&{percent_encode(aliyun_canonical_query(params))}"
    )


def aliyun_signature(method: str, params: Mapping[str, str], secret: str) -> str:
    """The ``Signature`` parameter of an RPC-style request (signature method V2)."""
    digest = hmac.new(
        f"{secret}&".encode(), aliyun_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tc3_canonical_request(
    method: str, query: str, content_type: str, host: str, payload: bytes
) -> str:
    return "\n".join(
        [
            method.upper(),
            "/",
            query,
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            sha256_hex(payload),
        ]
    )


def tc3_date(timestamp: int) -> str:
    """The credential scope's date: the UTC day of the timestamp (never the local one)."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(timestamp: int, service: str, canonical_request: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{sha256_hex(canonical_request.encode())}"


def tc3_signature(secret_key: str, timestamp: int, service: str, string_to_sign: str) -> str:
    def _hmac(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    key = _hmac(f"TC3{secret_key}".encode(), tc3_date(timestamp))
    key = _hmac(key, service)
    key = _hmac(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    timestamp: int,
    payload: bytes,
    content_type: str = "application/json; charset=utf-8",
) -> str:
    """The ``Authorization`` header of a POST to ``https://<host>/`` with ``payload``."""
    canonical = tc3_canonical_request("POST", "", content_type, host, payload)
    to_sign = tc3_string_to_sign(timestamp, service, canonical)
    signature = tc3_signature(secret_key, timestamp, service, to_sign)
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )
