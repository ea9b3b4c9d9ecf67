"""Opt-out replies: a user who answers TD, T, N, 退订 or R stops receiving messages.

Replies are typed on phones, so the keyword arrives decorated: in either letter case,
full-width (``ＴＤ``), with spaces or a full stop around it (``退订。``). All of that is
forgiven; anything more (``TD please``, ``T D``) is an ordinary reply, because opting a
user out by mistake loses the account a customer.
"""

from __future__ import annotations

import unicodedata

from smsgate.core.textnorm import fold

KEYWORDS = frozenset({"td", "t", "n", "退订", "r"})
_TRIMMED_CATEGORIES = ("P", "S", "Z", "C")  # punctuation, symbols, separators, control/format


def is_optout_keyword(text: str) -> bool:
    """True when the reply, trimmed and normalised, is exactly one opt-out keyword."""
    return _trim(fold(text)) in KEYWORDS


def _trim(text: str) -> str:
    """Drop punctuation, symbols, blanks and invisible characters at both ends."""
    start, end = 0, len(text)
    while start < end and _trimmable(text[start]):
        start += 1
    while end > start and _trimmable(text[end - 1]):
        end -= 1
    return text[start:end]


def _trimmable(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith(_TRIMMED_CATEGORIES)
