"""Per-account compatibility settings over the wire: `account set --provider-codes` answers
only SMSBao's documented codes (the JSON API keeps the real one), `--unknown-g-default`
sends an unknown product id `g` to the default product."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server_support import Account, ServerProcess

pytestmark = pytest.mark.backends("sqlite")


def sms(server: ServerProcess, acct: Account, **params: str) -> str:
    query = {"u": acct.username, "p": acct.md5, "m": "13800138000", **params}
    return httpx.get(f"{server.url}/sms", params=query, trust_env=False).text


def query(server: ServerProcess, acct: Account) -> str:
    params = {"u": acct.username, "p": acct.md5}
    return httpx.get(f"{server.url}/query", params=params, trust_env=False).text


def test_provider_codes_only(shared_server: ServerProcess) -> None:
    plain, compat = shared_server.create_accounts(2, 10)
    shared_server.cli("account", "set", compat.username, "--provider-codes")
    assert (
        "provider's documented only" in shared_server.cli("account", "show", compat.username).stdout
    )
    shared_server.wait_synced()

    unsigned = {"c": "没有签名的短信"}
    assert (sms(shared_server, plain, **unsigned), sms(shared_server, compat, **unsigned)) == (
        "52",
        "50",
    )
    bad_g = {"c": "【短信宝】你好", "g": "no-such-product"}
    assert (sms(shared_server, plain, **bad_g), sms(shared_server, compat, **bad_g)) == ("55", "-1")
    for acct in (plain, compat):
        assert query(shared_server, acct).startswith("0\n")
    assert (query(shared_server, plain), query(shared_server, compat)) == ("44", "43")

    shared_server.cli("account", "set", compat.username, "--all-codes")
    shared_server.wait_synced()
    assert sms(shared_server, compat, **unsigned) == "52"


def test_unknown_g_goes_to_the_default_product(shared_server: ServerProcess) -> None:
    acct = shared_server.create_account(10)
    shared_server.cli("signature", "add", acct.username, "短信宝")
    shared_server.wait_synced()
    provider_id = {"c": "【短信宝】您的验证码是1111", "g": "8"}  # an SMSBao product id
    assert sms(shared_server, acct, **provider_id) == "55"
    shared_server.cli("account", "set", acct.username, "--unknown-g-default")
    shared_server.wait_synced()
    assert sms(shared_server, acct, **provider_id) == "0"
    shared_server.cli("account", "set", acct.username, "--unknown-g-refused")
    shared_server.wait_synced()
    assert sms(shared_server, acct, **provider_id | {"m": "13800138009"}) == "55"
