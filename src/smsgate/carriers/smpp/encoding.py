"""A message as the submit_sm bodies that carry it: alphabet, parts, concatenation headers.

GSM-7 when every character has a septet and it takes as many parts as were billed,
otherwise UCS-2; billing counts UCS-2 units (:mod:`smsgate.core.units`), so UCS-2 always
sends exactly the billed parts, and GSM-7 is used only where it sends no more and no fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

from smsgate.core.segments import Coding, coding_for, concat_udh, encode_text, split

UDHI = 0x40  # esm_class: the short message starts with a user data header


@dataclass(frozen=True, slots=True)
class Parts:
    coding: Coding
    bodies: tuple[bytes, ...]  # each with its concatenation header when there are several
    esm_class: int


def choose_coding(text: str, units: int) -> Coding:
    coding = coding_for(text)
    if coding is Coding.GSM7 and len(split(text, Coding.GSM7)) != units:
        return Coding.UCS2
    return coding


def encode(text: str, units: int, ref: int) -> Parts:
    """The bodies of ``text``; ``ref`` (0-255) ties the parts of a long message together."""
    coding = choose_coding(text, units)
    pieces = split(text, coding)
    if len(pieces) == 1:
        return Parts(coding, (encode_text(text, coding),), 0)
    total = len(pieces)
    bodies = tuple(
        concat_udh(ref & 0xFF, total, seq) + encode_text(piece, coding)
        for seq, piece in enumerate(pieces, start=1)
    )
    return Parts(coding, bodies, UDHI)
