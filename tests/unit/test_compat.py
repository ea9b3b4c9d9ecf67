"""Provider-codes-only answers: every smsgate extension code has a documented stand-in,
the documented ones stand for themselves (protocol.md's table, restated here)."""

from __future__ import annotations

import pytest

from smsgate import errors
from smsgate.core.compat import DOCUMENTED, provider_code

PROTOCOL_TABLE = {
    "44": "43",
    "53": "43",
    "52": "50",
    "54": "50",
    "56": "50",
    "57": "51",
    "55": "-1",
}


@pytest.mark.parametrize("code", errors.WIRE_CODES, ids=lambda c: c.wire)
def test_every_code_is_answered_with_a_documented_one(code: errors.ErrorCode) -> None:
    answered = provider_code(code)
    assert answered.wire in DOCUMENTED
    if code.wire in DOCUMENTED:
        assert answered is code
    else:
        assert answered.wire == PROTOCOL_TABLE[code.wire]


def test_the_table_covers_exactly_the_extensions() -> None:
    extensions = {c.wire for c in errors.WIRE_CODES} - DOCUMENTED
    assert extensions == set(PROTOCOL_TABLE)
