"""Small text helpers shared by the content checks.

They live together so that "how long is this message" and "what counts as
blank" are answered the same way by billing, the length limit, the signature
rule, the word filter and the opt-out keywords.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that str.strip() and str.isspace() do not know about but that
# clients and attackers put around or inside text: zero-width space / non-joiner /
# joiner, word joiner, soft hyphen, and the byte-order mark some clients prepend.
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u00ad\ufeff"

_NOT_ALNUM = re.compile(r"[\W_]+")  # \W is "not str.isalnum()": keeps letters (CJK too), digits


def ucs2_len(text: str) -> int:
    """Length in UCS-2 code units: what the carrier counts on the wire.

    Every character counts 1; one outside the Basic Multilingual Plane (most emoji)
    needs a surrogate pair and counts 2.
    """
    if text.isascii():
        return len(text)
    # A character outside the BMP becomes a surrogate pair: two code units.
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def strip_blank(text: str) -> str:
    """Strip whitespace (full-width space included) and zero-width characters at both ends."""
    return text.strip().strip(ZERO_WIDTH).strip()


def fold(text: str) -> str:
    """NFKC-normalise and casefold, so full-width ``ＦＯＯ`` and ``Foo`` both become ``foo``."""
    return unicodedata.normalize("NFKC", text).casefold()


def letters_and_digits(text: str) -> str:
    """Keep only letters (any script) and digits: drop blanks, punctuation, symbols, marks.

    Used to defeat separators inserted inside a word (``法 轮 功``, ``法*轮*功``).
    """
    return _NOT_ALNUM.sub("", text)
