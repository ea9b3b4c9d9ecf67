"""Phone numbers from the ``m`` parameter: split, normalise, deduplicate, validate.

A request is all or nothing: one bad number rejects the whole request with ``51``
(``BAD_PHONE``), as SMSBao does, so no caller has to work out which of its numbers
were sent. Validity and carrier come from Google's libphonenumber data
(``phonenumbers``), not from a hand-kept prefix table that would go stale.

Rules shared by every endpoint:

- items are separated by ``,`` or the full-width ``，``;
- whitespace around an item is ignored, and an item that is empty after that (a
  trailing comma, ``a,,b``) is skipped: it names no number, so refusing the request for
  it would only punish a sloppy join; a request with no number at all is refused;
- duplicates are removed keeping the first occurrence's position;
- at most :data:`MAX_NUMBERS` distinct numbers; the count is checked while splitting, so
  a huge ``m`` is refused before any expensive validation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from phonenumbers import carrier as pn_carrier

from smsgate import errors
from smsgate.errors import Rejected

MAX_NUMBERS = 99

_SEPARATOR = re.compile("[,，]")
# An optional +86 / 0086 / 86 (and one space or hyphen after it), then an 11-digit
# mainland mobile number. re.ASCII: only 0-9 are digits, not other scripts' digits.
_DOMESTIC = re.compile(r"(?:(?:\+|00)?86[ -]?)?(1[0-9]{10})", re.ASCII)
_E164_DIGITS = re.compile(r"[1-9][0-9]{5,14}", re.ASCII)
_SHOWN_CHARS = 32  # how much of a bad item an error detail repeats
_CACHE_SIZE = 65536
_CN_CODE = 86


class Carrier(StrEnum):
    """The mainland network a number belongs to (``UNKNOWN`` outside mainland China)."""

    CHINA_MOBILE = "china_mobile"
    CHINA_UNICOM = "china_unicom"
    CHINA_TELECOM = "china_telecom"
    CHINA_BROADNET = "china_broadnet"
    VIRTUAL = "virtual"
    UNKNOWN = "unknown"


# Mobile virtual network operators (虚拟运营商). libphonenumber reports the *host*
# network for most of these (170x -> Telecom/Mobile/Unicom) and nothing for 162/165;
# routing and carrier filtering treat them as their own class, so the prefix wins.
_VIRTUAL_PREFIXES = ("170", "171", "162", "165", "167")
_BY_NAME = {
    "China Mobile": Carrier.CHINA_MOBILE,
    "China Unicom": Carrier.CHINA_UNICOM,
    "China Telecom": Carrier.CHINA_TELECOM,
    "China Broadnet": Carrier.CHINA_BROADNET,
}
_MOBILE_TYPES = (
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
)


@dataclass(frozen=True, slots=True)
class Phone:
    """One validated number. ``e164`` is the identity (dedupe, opt-out, frequency keys)."""

    e164: str  # "+8613800138000"
    national: str  # national significant number: "13800138000"
    country: str  # ISO 3166 region: "CN"
    carrier: Carrier


def parse_domestic(m: str) -> list[Phone]:
    """Numbers for ``/sms``: 11-digit mainland mobiles, optionally with +86 / 86 / 0086."""
    return [_domestic_or_reject(n) for n in _distinct(m, _national)]


def parse_single_domestic(m: str) -> Phone:
    """The one number for ``/voice``; the same number repeated still counts as one."""
    phones = parse_domestic(m)
    if len(phones) != 1:
        raise Rejected(errors.BAD_PHONE, f"voice takes exactly one number, got {len(phones)}")
    return phones[0]


def parse_international(m: str) -> list[Phone]:
    """Numbers for ``/wsms``: E.164 with a leading ``+``, valid for their country.

    A raw ``+`` in a query string decodes to a space, so whitespace before the digits
    stands for ``+``. Bare digits are refused rather than guessed: ``4155552671`` read
    as E.164 is a Swiss number, not the Californian one that was meant.
    """
    return [_international_or_reject(d) for d in _distinct(m, _e164_digits)]


def carrier_of(national: str) -> Carrier:
    """The carrier of a mainland mobile number given in national form (11 digits)."""
    return _carrier(national, phonenumbers.parse("+86" + national))


def network_of(national: str) -> Carrier:
    """Like :func:`carrier_of` for a stored mainland number, decided once per block."""
    if national.startswith(_VIRTUAL_PREFIXES):
        return Carrier.VIRTUAL
    if len(national) != 11 or not national.isdigit():
        return Carrier.UNKNOWN
    return _block(national[:_BLOCK_DIGITS]) or Carrier.UNKNOWN


def _carrier(national: str, number: phonenumbers.PhoneNumber) -> Carrier:
    if national.startswith(_VIRTUAL_PREFIXES):
        return Carrier.VIRTUAL
    return _BY_NAME.get(pn_carrier.name_for_number(number, "en"), Carrier.UNKNOWN)


def _items(m: str) -> Iterator[str]:
    """Non-empty items of ``m`` (see the module docstring for why empty ones are skipped)."""
    for item in _SEPARATOR.split(m):
        if item.strip():
            yield item


def _distinct(m: str, key: Callable[[str], str]) -> list[str]:
    """Keys of the items, first occurrence first; refuse none at all or over the cap."""
    seen: dict[str, None] = {}
    for item in _items(m):
        seen[key(item)] = None
        if len(seen) > MAX_NUMBERS:
            raise Rejected(errors.BAD_PHONE, f"more than {MAX_NUMBERS} numbers")
    if not seen:
        raise Rejected(errors.BAD_PHONE, "no phone number")
    return list(seen)


def _national(item: str) -> str:
    """The 11 digits of a domestic item, or refuse it."""
    match = _DOMESTIC.fullmatch(item.strip())
    if match is None:
        raise _bad(item)
    return match.group(1)


def _e164_digits(item: str) -> str:
    """The digits after ``+`` (or after the space a decoded ``+`` became), or refuse."""
    body = item.rstrip()
    text = body.lstrip()
    if text.startswith("+"):
        digits = text[1:]
    elif text != body:
        digits = text
    else:
        raise _bad(item, "international numbers need a leading +")
    if _E164_DIGITS.fullmatch(digits) is None:
        raise _bad(item)
    return digits


def _domestic_or_reject(national: str) -> Phone:
    phone = _domestic(national)
    if phone is None:
        raise _bad(national, "not a valid mainland mobile number")
    return phone


def _international_or_reject(digits: str) -> Phone:
    phone = _international(digits)
    if phone is None:
        raise _bad("+" + digits)
    return phone


def _domestic(national: str) -> Phone | None:
    """A mainland mobile number, or None: decided once per block of 10,000 numbers."""
    carrier = _block(national[:_BLOCK_DIGITS])
    if carrier is None:
        return None
    return Phone("+86" + national, national, "CN", carrier)


# Mainland mobile numbers are allocated in blocks of 10,000: a 3-digit segment (号段) and
# a 4-digit H code. Validity, type and carrier are properties of the block, so
# libphonenumber (~40 us a number) is asked once per block, not once per number; a test
# compares the two on random numbers from every segment.
_BLOCK_DIGITS = 7


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _block(prefix: str) -> Carrier | None:
    """The carrier of the block starting with these 7 digits, or None if it is not mobile."""
    phone = _domestic_by_number(prefix + "0" * (11 - len(prefix)))
    return None if phone is None else phone.carrier


def _domestic_by_number(national: str) -> Phone | None:
    """libphonenumber asked about this very number (the reference the tests hold the block
    rule to)."""
    number = phonenumbers.parse("+86" + national)
    if not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        return None
    return Phone("+86" + national, national, "CN", _carrier(national, number))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _international(digits: str) -> Phone | None:
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    national = phonenumbers.national_significant_number(number)
    if number.country_code == _CN_CODE:  # mainland numbers keep their carrier (and must be mobile)
        return _domestic(national)
    region = phonenumbers.region_code_for_number(number) or "ZZ"
    return Phone("+" + digits, national, region, Carrier.UNKNOWN)


def _bad(item: str, why: str = "invalid phone number") -> Rejected:
    shown = item.strip()[:_SHOWN_CHARS]
    return Rejected(errors.BAD_PHONE, f"{why}: {shown!r}")
