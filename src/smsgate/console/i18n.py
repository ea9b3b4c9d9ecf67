"""The console's two languages: 简体中文 (default) and English.

The English text is the key; the catalogue gives its Chinese. A string missing from the
catalogue shows in English (a test lists the templates' strings and finds none missing).
"""

from __future__ import annotations

from smsgate.console.catalogue import ZH_TEXT

ZH = "zh"
EN = "en"
LANGUAGES = (ZH, EN)


def pick(chosen: str | None, accept_language: str | None) -> str:
    """The switch's choice if any; else the first of ours in Accept-Language; else Chinese."""
    if chosen in LANGUAGES:
        return chosen
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return ZH
        if tag.startswith("en"):
            return EN
    return ZH


def translate(text: str, lang: str) -> str:
    return ZH_TEXT.get(text, text) if lang == ZH else text
