"""The SSRF guard of reply pushes: at set time (admin service, real database) and at
connect time (the real HTTP pusher against real receivers on loopback).

Name resolution is the one seam: a resolver that answers what a hostile DNS server
would (``receiver.example`` is 127.0.0.1) stands in for DNS, which this machine has no
server for; everything after it (the check, the connection to the checked address, the
HTTP exchange) is real.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from smsgate import errors
from smsgate.core.targets import TargetPolicy
from smsgate.pushers.http import HttpPusher
from smsgate.services.admin import AdminService
from smsgate.store.admin import SqlAccountStore
from tests.receivers import Receiver
from tests.support.clock import ManualClock
from tests.unit.test_targets import INTERNAL_URLS

PUBLIC = "93.184.216.34"


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


def push(pusher: HttpPusher, url: str) -> tuple[int | None, str | None]:
    async def go() -> tuple[int | None, str | None]:
        try:
            return await pusher.push(url, "13800138000", "好")
        finally:
            await pusher.close()

    return asyncio.run(go())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver("0") as r:
        yield r


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_each_internal_address_is_refused_when_the_url_is_set(
    store: SqlAccountStore, clock: ManualClock, url: str
) -> None:
    admin = AdminService(store, clock)  # no allow-list: the default
    admin.create_account("alice", "secret-pw")
    admin.configure("alice", mo_url="https://example.com/mo")
    with pytest.raises(errors.InvalidInput, match="must reach a public address"):
        admin.configure("alice", mo_url=url)
    assert admin.show("alice").account.mo_url == "https://example.com/mo"


def test_an_allowed_internal_receiver_can_be_set(
    store: SqlAccountStore, clock: ManualClock
) -> None:
    admin = AdminService(store, clock, TargetPolicy.parse(["10.0.0.0/8", "receiver.internal"]))
    admin.create_account("alice", "secret-pw")
    admin.configure("alice", mo_url="http://10.1.2.3/mo")
    admin.configure("alice", mo_url="http://receiver.internal/mo")
    assert admin.show("alice").account.mo_url == "http://receiver.internal/mo"


def test_a_name_that_resolves_to_loopback_is_refused_at_connect_time(receiver: Receiver) -> None:
    url = f"http://receiver.example:{receiver.port}/mo"
    TargetPolicy().check_url(url)  # a public-looking name passes the set-time check
    pusher = HttpPusher(2.0, resolve=resolver({"receiver.example": ["127.0.0.1"]}))
    with pytest.raises(errors.TargetRefused) as refused:
        push(pusher, url)
    assert refused.value.reason == "receiver.example resolves to 127.0.0.1 is loopback"
    assert receiver.count() == 0


def test_every_resolved_address_is_checked(receiver: Receiver) -> None:
    url = f"http://receiver.example:{receiver.port}/mo"
    pusher = HttpPusher(2.0, resolve=resolver({"receiver.example": [PUBLIC, "127.0.0.1"]}))
    with pytest.raises(errors.TargetRefused, match=r"127\.0\.0\.1 is loopback"):
        push(pusher, url)
    assert receiver.count() == 0


def test_the_connection_goes_to_the_checked_address_under_the_urls_name(
    receiver: Receiver,
) -> None:
    """Allowed, the name's checked address is what is connected to; Host stays the name."""
    url = f"http://receiver.example:{receiver.port}/mo"
    pusher = HttpPusher(
        2.0,
        targets=TargetPolicy.parse(["127.0.0.1"]),
        resolve=resolver({"receiver.example": ["127.0.0.1"]}),
    )
    assert push(pusher, url) == (200, "0")
    [hit] = receiver.hits
    assert hit.host == f"receiver.example:{receiver.port}"


def test_a_literal_internal_address_is_refused_at_connect_time(receiver: Receiver) -> None:
    """A URL set before the allow-list was narrowed is refused when pushed."""
    with pytest.raises(errors.TargetRefused, match=r"127\.0\.0\.1 is loopback"):
        push(HttpPusher(2.0), receiver.url())
    assert receiver.count() == 0


def test_a_redirect_to_an_internal_address_is_not_followed(receiver: Receiver) -> None:
    with Receiver("moved", status=302) as public:
        public.location = receiver.url("/secret")
        pusher = HttpPusher(2.0, targets=TargetPolicy.parse(["127.0.0.1"]))
        assert push(pusher, public.url()) == (302, "moved")
        assert public.count() == 1
    assert receiver.count() == 0  # the Location was never requested


def test_through_a_proxy_the_target_is_checked_before_the_proxy_is_asked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy (here: the receiver itself) would connect for us: it is never reached."""
    monkeypatch.setenv("HTTP_PROXY", receiver.url(""))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    pusher = HttpPusher(2.0, resolve=resolver({"receiver.example": ["10.0.0.7"]}))
    with pytest.raises(errors.TargetRefused, match=r"receiver\.example resolves to 10\.0\.0\.7"):
        push(pusher, "http://receiver.example/mo")
    assert receiver.count() == 0


def _loopback_name() -> str | None:
    """A name other than localhost that this machine's resolver maps to loopback."""
    import socket

    name = socket.gethostname()
    try:
        found = {info[4][0] for info in socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)}
    except OSError:
        return None
    return name if found and all(a.startswith("127.") or a == "::1" for a in found) else None


@pytest.mark.skipif(_loopback_name() is None, reason="the host name does not resolve to loopback")
def test_the_system_resolver_is_checked_too(receiver: Receiver) -> None:
    """The real resolver (/etc/hosts here): the host's own name resolves to loopback."""
    name = _loopback_name()
    url = f"http://{name}:{receiver.port}/mo"
    with pytest.raises(errors.TargetRefused, match="resolves to 127"):
        push(HttpPusher(2.0), url)
    assert receiver.count() == 0
