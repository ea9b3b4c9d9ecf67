"""The SDK's contracts: its public names, what importing it drags in, and the async client
being the sync one with ``await`` (so no logic is written twice)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import smsgate.client
from smsgate.client import AsyncClient, Client

CLIENT_DIR = Path(smsgate.client.__file__).parent

PUBLIC = [
    "DEFAULT_BASE_URL", "MAX_NUMBERS", "AccountInactive", "ApiError", "AsyncClient",
    "BadCredentials", "BadPhone", "BadProduct", "BadSignature", "Balance", "Batch", "BatchResult",
    "Client", "ClientError", "ContentTooLong", "FrequencyLimit", "InsufficientBalance",
    "IpNotAllowed", "NoAccount", "OptedOut", "Page", "ParamsIncomplete", "QueryTooFrequent",
    "Reply", "ReplyReceiver", "SendOutcomeUnknown", "SensitiveWord", "TemplateRequired",
    "TransportError", "handle_push", "handle_push_async", "md5_hex", "parse_push", "plan_batches",
]  # fmt: skip

# async -> sync, applied in order
UNASYNC = [
    ("The asyncio client", "The blocking client"),
    ("import asyncio", "import time"),
    ("AsyncBaseTransport", "BaseTransport"),
    ("AsyncClient", "Client"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("aclose", "close"),
    ("asyncio.sleep", "time.sleep"),
    ("async def ", "def "),
    ("await ", ""),
]


def test_all_lists_exactly_the_public_names() -> None:
    exported = {
        name
        for name, value in vars(smsgate.client).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert sorted(smsgate.client.__all__) == sorted(exported) == sorted(PUBLIC)


def test_both_clients_offer_the_same_methods() -> None:
    def public(cls: type) -> set[str]:
        return {name for name in vars(cls) if not name.startswith("_")}

    assert public(AsyncClient) - {"aclose"} == public(Client) - {"close"}
    for name in public(Client) - {"close"}:
        assert inspect.signature(getattr(Client, name)) == inspect.signature(
            getattr(AsyncClient, name)
        ), name
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name


def test_the_async_client_is_the_sync_one_with_await() -> None:
    text = (CLIENT_DIR / "_async.py").read_text()
    for async_word, sync_word in UNASYNC:
        text = text.replace(async_word, sync_word)
    assert text == (CLIENT_DIR / "_sync.py").read_text()


def test_importing_the_sdk_needs_only_the_stdlib_httpx_and_errors() -> None:
    """Measured after ``import httpx`` (which itself loads click/rich when present)."""
    code = (
        "import sys, json, httpx; before = set(sys.modules); import smsgate.client; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    src = str(CLIENT_DIR.parents[1])
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": src},
    ).stdout
    loaded = set(json.loads(out))
    third_party = {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names)
    assert third_party == {"smsgate"}
    ours = {m for m in loaded if m.startswith("smsgate")}
    assert all(m in ("smsgate", "smsgate.errors") or m.startswith("smsgate.client") for m in ours)
