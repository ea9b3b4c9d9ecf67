"""The `smpp` carrier kind: its options, checked and shown without the password, and the
carrier built from them."""

from __future__ import annotations

import pytest

from smsgate.carriers.kinds import SHOWN_SECRET, kind_of
from smsgate.carriers.smpp.carrier import SmppCarrier

GIVEN = {"host": "smsc.example.com", "system_id": "acme", "password": "pw"}


def test_defaults_fill_in_and_the_common_options_apply() -> None:
    options = kind_of("smpp").validate({**GIVEN, "networks": "cmcc,cucc"})
    assert options["port"] == 2775
    assert options["window"] == 32
    assert options["binds"] == 1
    assert options["bind_mode"] == "transceiver"
    assert options["networks"] == "cmcc,cucc"  # routing's restriction, as for every kind
    assert options["cooling_seconds"] == 30.0


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"host": "h"}, "needs --system-id"),
        ({**GIVEN, "bind_mode": "both"}, "bind_mode must be one of"),
        ({**GIVEN, "window": "many"}, "window must be a whole number"),
        ({**GIVEN, "tps": "-1"}, "tps must not be negative"),
        ({**GIVEN, "networks": "mars"}, "mars"),
        ({**GIVEN, "sytem_id": "x"}, "has no option sytem_id"),
    ],
)
def test_bad_options_are_refused_with_the_reason(given: dict[str, str], why: str) -> None:
    with pytest.raises(ValueError, match=why):
        kind_of("smpp").validate(given)


def test_the_password_is_never_shown() -> None:
    kind = kind_of("smpp")
    shown = kind.shown(kind.validate(GIVEN))
    assert shown["password"] == SHOWN_SECRET
    assert "pw" not in shown.values()


def test_the_carrier_is_built_from_text_options() -> None:
    kind = kind_of("smpp")
    options = kind.validate({**GIVEN, "port": "2776", "window": "8", "tps": "50", "binds": "2"})
    carrier = kind.build("cm", options)
    assert isinstance(carrier, SmppCarrier)
    assert carrier.name == "cm"
    status = carrier.status()
    assert status["state"] == "stopped"
    assert status["window"] == 8
    assert "pw" not in str(status)
