"""Where reply pushes may go (core.targets): public addresses only, unless allowed."""

from __future__ import annotations

import ipaddress

import pytest

from smsgate import errors
from smsgate.app import simulator_api_on
from smsgate.core.accounts import Product
from smsgate.core.targets import TargetPolicy, address_refusal
from smsgate.settings import Settings

INTERNAL_URLS = [
    # the finding's own list
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:6379/",
    "http://[::1]/mo",
    "http://10.0.0.1/mo",
    "http://localhost/mo",
    # metadata services and names
    "http://[fd00:ec2::254]/latest/",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://api.localhost/mo",
    # private, link-local, multicast, unspecified, reserved, shared
    "http://192.168.1.10/mo",
    "http://172.16.5.4/mo",
    "http://169.254.1.1/mo",
    "http://[fe80::1]/mo",
    "http://[fc00::1]/mo",
    "http://224.0.0.1/mo",
    "http://[ff02::1]/mo",
    "http://0.0.0.0/mo",
    "http://[::]/mo",
    "http://240.0.0.1/mo",
    "http://100.64.0.1/mo",
    # other spellings of loopback and private addresses
    "http://127.1/mo",
    "http://2130706433/mo",
    "http://0x7f000001/mo",
    "http://0177.0.0.1/mo",
    "http://[::ffff:127.0.0.1]/mo",
    "http://[64:ff9b::a00:1]/mo",
    "http://[2002:a00:1::]/mo",
    "https://user:pw@127.0.0.1/mo",
]


@pytest.mark.parametrize("url", INTERNAL_URLS)
def test_internal_addresses_are_refused_as_mo_urls(url: str) -> None:
    with pytest.raises(errors.InvalidInput, match="must reach a public address"):
        TargetPolicy().check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/mo?token=a",
        "http://8.8.8.8/mo",
        "http://[2606:4700::1111]/mo",
        "https://receiver.example.cn:8443/sms/replies",
    ],
)
def test_public_addresses_and_names_are_accepted(url: str) -> None:
    assert TargetPolicy().check_url(url) == url


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://", "http://a b/", "http://x:99999/"])
def test_malformed_urls_are_refused_with_a_clear_message(url: str) -> None:
    with pytest.raises(errors.InvalidInput, match="MO URL"):
        TargetPolicy().check_url(url)


def test_the_allow_list_admits_networks_and_names_and_nothing_else() -> None:
    policy = TargetPolicy.parse(["127.0.0.1", "10.1.0.0/16", "Receiver.Internal", " "])
    assert policy.check_url("http://127.0.0.1:9/mo")
    assert policy.check_url("http://10.1.2.3/mo")
    assert policy.check_url("http://receiver.internal./mo")
    for url in ("http://127.0.0.2/mo", "http://10.2.0.1/mo", "http://169.254.169.254/"):
        with pytest.raises(errors.InvalidInput):
            policy.check_url(url)


def test_every_refusal_says_what_the_address_is() -> None:
    def why(text: str) -> str | None:
        return address_refusal(ipaddress.ip_address(text))

    assert why("169.254.169.254") == "169.254.169.254 is a cloud metadata service"
    assert why("127.0.0.1") == "127.0.0.1 is loopback"
    assert why("10.0.0.1") == "10.0.0.1 is private"
    assert why("fe80::1") == "fe80::1 is link-local"
    assert why("::ffff:10.0.0.1") == "::ffff:a00:1 embeds 10.0.0.1 is private"
    assert why("93.184.216.34") is None


def _product(carrier: str) -> Product:
    return Product("p" + carrier, "P", 1, carrier, False, False)


@pytest.mark.parametrize(
    ("setting", "carriers", "on"),
    [
        ("auto", ["simulator"], True),
        ("auto", ["smpp1,simulator"], True),
        ("auto", ["smpp1, simulator"], True),
        ("auto", ["smpp1"], False),
        ("auto", ["simulator2"], False),
        ("auto", [], False),
        (True, ["smpp1"], True),
        (False, ["simulator"], False),
    ],
)
def test_the_simulator_api_follows_the_carriers_in_use_by_default(
    setting: bool | str, carriers: list[str], on: bool
) -> None:
    settings = Settings(simulator_api=setting)
    assert simulator_api_on(settings, [_product(c) for c in carriers]) is on
