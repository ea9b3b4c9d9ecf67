"""Billing units (条) and the length limit.

One rule counts characters everywhere: UCS-2 code units (see
:func:`smsgate.core.textnorm.ucs2_len`), because that is what the carrier counts when
it splits a long message. Billing and the 500-character limit therefore never
disagree about how long a message is.
"""

from __future__ import annotations

import re

from smsgate import errors
from smsgate.core.segments import Coding, split
from smsgate.core.textnorm import ucs2_len
from smsgate.errors import Rejected

SINGLE_LIMIT = 70  # one SMS holds 70 UCS-2 characters
PART_SIZE = 67  # a part of a long SMS loses 3 characters to the concatenation header
MAX_LENGTH = 500
# C0 controls but tab, LF and CR; DEL and the C1 controls. NUL cannot even be stored
# in PostgreSQL text; none of them belongs in a text message.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def units(content: str) -> int:
    """Units one copy of ``content`` costs: 1 up to 70 characters, else ceil(len / 67).

    Precisely, the number of UCS-2 parts a carrier sends it in (:mod:`segments`): that is
    ceil(len / 67) unless a character outside the BMP would straddle a part boundary,
    where the part ends early (a surrogate pair is never split) and the count can be
    one more. Billing thus always equals what is sent.
    Empty content is 1 unit (it would still be one SMS); the API refuses it earlier.
    """
    length = ucs2_len(content)
    if length <= SINGLE_LIMIT:
        return 1
    if length == len(content):  # no surrogate pairs: parts are exactly 67 units
        return -(-length // PART_SIZE)
    return len(split(content, Coding.UCS2))


def request_cost(units_per_message: int, n_numbers: int, price: int) -> int:
    """Units a whole request costs: units per message x distinct numbers x product price.

    The one billing rule: :class:`smsgate.core.messages.Charge` prices itself with it.
    """
    if n_numbers < 0 or price < 0:
        raise ValueError(f"n_numbers and price must be >= 0, got {n_numbers} and {price}")
    return units_per_message * n_numbers * price


def check_characters(content: str) -> None:
    """Refuse content with control characters: ``-1``, a malformed parameter."""
    found = CONTROL_CHARACTERS.search(content)
    if found is not None:
        raise Rejected(
            errors.PARAMS_INCOMPLETE,
            f"content holds control character U+{ord(found.group()):04X} at {found.start()}",
        )


def check_length(content: str) -> None:
    """Refuse content over 500 characters, counted as billing counts them.

    A character outside the BMP (most emoji) counts 2 here too: the limit exists to
    bound what is sent and billed, so it uses the same measure as billing.
    """
    length = ucs2_len(content)
    if length > MAX_LENGTH:
        raise Rejected(errors.CONTENT_TOO_LONG, f"{length} characters, at most {MAX_LENGTH}")
