"""The sensitive-word filter: one Aho-Corasick pass over normalised content.

Thousands of words are checked against every message on the hot path, so the list is
compiled once into an automaton (pyahocorasick) and each message is scanned once,
whatever the number of words.

Content and words are normalised the same way before matching, so that trivial
disguises do not let a word through:

1. NFKC, then casefold: ``ＦＯＯ``, ``Foo`` and ``foo`` are one word;
2. everything but letters (any script, CJK included) and digits is dropped: whitespace
   (full-width too), zero-width characters, punctuation, symbols (emoji included) and
   combining marks. ``法 轮 功``, ``法*轮*功`` and ``法<U+200B>轮功`` all read ``法轮功``.

The price is that a word can match across what were separate words in the content
(a word list should hold specific terms, not short fragments). Letters or digits
inserted inside a word are not removed: that would make every message a suspect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import ahocorasick

from smsgate import errors
from smsgate.core.textnorm import fold, letters_and_digits
from smsgate.errors import Rejected


class _Matcher(Protocol):
    """The part of ``ahocorasick.Automaton`` we use (the library ships no type hints)."""

    def iter(self, text: str) -> Iterator[tuple[int, str]]: ...


def normalise(text: str) -> str:
    """The form both words and content are compared in (see the module docstring)."""
    return letters_and_digits(fold(text))


@dataclass(frozen=True, slots=True)
class WordFilter:
    """A compiled word list. Build it with :meth:`build`; it is immutable and thread-safe
    for reading, so one instance serves every request until the list changes."""

    matcher: _Matcher | None = field(repr=False)  # None: no words, matches nothing
    size: int  # distinct words after normalisation

    @classmethod
    def build(cls, words: Iterable[str]) -> WordFilter:
        """Compile ``words``; words empty after normalisation are ignored, duplicates merged.

        A match reports the word as first given (not its normalised form), so the
        operator recognises it.
        """
        originals: dict[str, str] = {}
        for word in words:
            originals.setdefault(normalise(word), word)
        originals.pop("", None)
        if not originals:
            return cls(matcher=None, size=0)
        automaton = ahocorasick.Automaton()
        for key, word in originals.items():
            automaton.add_word(key, word)
        automaton.make_automaton()
        return cls(matcher=automaton, size=len(originals))

    def find(self, content: str) -> str | None:
        """The word whose occurrence ends first in ``content``, or None if it is clean."""
        if self.matcher is None:
            return None
        return next((word for _end, word in self.matcher.iter(normalise(content))), None)

    def check(self, content: str) -> None:
        """Refuse content containing a listed word (``50``); the detail names the word."""
        word = self.find(content)
        if word is not None:
            raise Rejected(errors.SENSITIVE_WORD, word)
