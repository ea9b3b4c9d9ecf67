"""Operator-approved templates: text with ``{placeholders}``, compiled to an anchored regex.

A product may require every message to match an approved template (``54`` otherwise).
Template syntax, chosen to be unsurprising to anyone who knows ``str.format``:

- ``{name}`` is a placeholder; ``name`` is an identifier (Chinese names such as
  ``{验证码}`` are identifiers too); ``{{`` and ``}}`` are a literal brace;
- any other brace (unbalanced, ``{}``, ``{a b}``) is a malformed template
  (:class:`~smsgate.errors.InvalidInput`);
- a placeholder matches 1 to ``max_chars`` characters (default 35), never a line break,
  shortest first: a value is one short field (a code, a name, an amount), and both
  limits stop a template from becoming a carrier for arbitrary text;
- a value never contains the literal text that follows its placeholder (it ends at the
  first occurrence of that text): every value then has one possible end, so a crafted
  message cannot make matching try every way of splitting it (catastrophic backtracking);
- the same name twice must match the same text both times;
- two placeholders need literal text between them, and a template needs some literal
  text: ``{a}{b}`` has no single reading, ``{a}`` approves anything, and runs of
  adjacent placeholders make matching backtrack exponentially;
- everything else matches literally, case and width included. Blanks around the whole
  content (and the whole template) are ignored, as the signature check ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from smsgate import errors
from smsgate.core.textnorm import strip_blank
from smsgate.errors import Rejected

PLACEHOLDER_MAX_CHARS = 35
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template; build it with :func:`compile_template`."""

    text: str
    names: tuple[str, ...]  # distinct placeholder names, in order of first appearance
    pattern: re.Pattern[str] = field(repr=False, compare=False)

    def matches(self, content: str) -> bool:
        """True when the whole content (blanks at its edges aside) fits the template."""
        return self.pattern.fullmatch(strip_blank(content)) is not None

    def values(self, content: str) -> dict[str, str] | None:
        """The placeholder values in ``content``, or None when it does not match."""
        match = self.pattern.fullmatch(strip_blank(content))
        return None if match is None else match.groupdict()


def compile_template(text: str, max_chars: int = PLACEHOLDER_MAX_CHARS) -> Template:
    """Compile template text, or raise InvalidInput saying what is wrong with it."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    parts = _parse(strip_blank(text))
    names = tuple(dict.fromkeys(p.name for p in parts if isinstance(p, _Slot)))
    pattern = re.compile(_regex(parts, max_chars))
    return Template(text=text, names=names, pattern=pattern)


def match_any(content: str, templates: Iterable[Template]) -> Template | None:
    """The first template that ``content`` matches, if any."""
    return next((t for t in templates if t.matches(content)), None)


def check_template(content: str, templates: Iterable[Template], required: bool) -> Template | None:
    """The matching template when the product requires one; refuse (54) when none matches.

    When not required nothing is matched (the hot path skips the work) and None is returned.
    """
    if not required:
        return None
    template = match_any(content, templates)
    if template is None:
        raise Rejected(errors.TEMPLATE_REQUIRED, "content matches no approved template")
    return template


@dataclass(frozen=True, slots=True)
class _Slot:
    name: str


def _parse(text: str) -> list[str | _Slot]:
    """Split template text into literal strings and placeholders, validating as it goes."""
    parts: list[str | _Slot] = []
    literal, pos = "", 0
    for token in _TOKEN.finditer(text):
        literal += text[pos : token.start()]
        pos = token.end()
        if token.group() in ("{{", "}}"):
            literal += token.group()[0]
            continue
        slot = _slot(token)
        if parts and isinstance(parts[-1], _Slot) and not literal:
            raise errors.InvalidInput("template placeholders must be separated by literal text")
        parts += [literal, slot] if literal else [slot]
        literal = ""
    literal += text[pos:]
    if literal:
        parts.append(literal)
    if not parts:
        raise errors.InvalidInput("template text is empty")
    if all(isinstance(p, _Slot) for p in parts):
        raise errors.InvalidInput("a template needs literal text besides its placeholders")
    return parts


def _slot(token: re.Match[str]) -> _Slot:
    name = token.group(1)
    if name is None:
        raise errors.InvalidInput(
            f"unbalanced {token.group()!r} in template at {token.start()} (write {{{{ or }}}})"
        )
    if not name.isidentifier():
        raise errors.InvalidInput(f"placeholder {{{name}}} needs a name that is an identifier")
    return _Slot(name)


def _regex(parts: list[str | _Slot], max_chars: int) -> str:
    seen: set[str] = set()
    out: list[str] = []
    for part, after in zip(parts, [*parts[1:], ""], strict=True):
        if isinstance(part, str):
            out.append(re.escape(part))
        elif part.name in seen:
            out.append(f"(?P={part.name})")
        else:
            seen.add(part.name)
            out.append(_value(part.name, after if isinstance(after, str) else "", max_chars))
    return "".join(out)


def _value(name: str, after: str, max_chars: int) -> str:
    """A value: 1..max_chars characters, no line break, never containing ``after``.

    Stopping at the first occurrence of the literal that follows gives every value one
    possible end, so matching stays linear instead of trying every split of the content.
    """
    char = f"(?!{re.escape(after)})[^\\r\\n]" if after else "[^\\r\\n]"
    return f"(?P<{name}>(?:{char}){{1,{max_chars}}}?)"
