"""The signature 【…】 that names the sender of every mainland SMS.

Carriers require exactly one signature per message, at the start (the usual place)
or at the end (also allowed by mainland conventions). We enforce the same, so a
message we accept is one a carrier will not bounce:

- blanks (whitespace, full-width space, zero-width characters) around the content
  are ignored when looking for the signature;
- the content holds exactly one ``【`` and one ``】``: a second signature, a nested or
  stray bracket, or 【…】 used for emphasis in the body is refused, since carriers
  read any 【…】 as a (second, unregistered) signature;
- the text inside is 3-10 characters (counted like billing), printable, with no
  blank at either edge; it is compared exactly, without brackets, to the account's
  registered signatures.
"""

from __future__ import annotations

from smsgate import errors
from smsgate.core.textnorm import strip_blank, ucs2_len
from smsgate.errors import Rejected

OPEN = "【"
CLOSE = "】"
MIN_CHARS = 3
MAX_CHARS = 10


def extract_signature(content: str) -> str:
    """The text inside the one 【…】 at the start or end of ``content``, or refuse."""
    text = strip_blank(content)
    _check_brackets(text)
    inside = _inside(text)
    _check_inside(inside)
    return inside


def check_signature(content: str, registered: frozenset[str]) -> str:
    """The content's signature if it is one of ``registered`` (stored without brackets)."""
    signature = extract_signature(content)
    if signature not in registered:
        raise _bad(f"signature {OPEN}{signature}{CLOSE} is not registered to this account")
    return signature


def _check_brackets(text: str) -> None:
    opens, closes = text.count(OPEN), text.count(CLOSE)
    if opens == 0 and closes == 0:
        raise _bad(f"missing signature {OPEN}…{CLOSE}")
    if opens > 1 or closes > 1:
        raise _bad(f"more than one {OPEN} or {CLOSE}: a message carries exactly one signature")
    if opens != closes:
        raise _bad(f"unbalanced {OPEN}{CLOSE}")


def _inside(text: str) -> str:
    """Text of the single bracket pair, which must open the content or close it."""
    start, end = text.index(OPEN), text.index(CLOSE)
    if end < start or (start != 0 and end != len(text) - 1):
        raise _bad(f"the signature {OPEN}…{CLOSE} must be at the start or the end")
    return text[start + 1 : end]


def _check_inside(inside: str) -> None:
    length = ucs2_len(inside)
    if not MIN_CHARS <= length <= MAX_CHARS:
        raise _bad(f"signature must be {MIN_CHARS}-{MAX_CHARS} characters, got {length}")
    if not inside.isprintable() or inside != inside.strip():
        raise _bad("signature contains blanks at its edges or unprintable characters")


def _bad(detail: str) -> Rejected:
    return Rejected(errors.BAD_SIGNATURE, detail)
