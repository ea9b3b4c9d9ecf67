"""SQL for the forbidden-word list the content filter is built from.

Every change runs in one transaction with an audit row and a bump of ``config_rev``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from smsgate.store import tables as t
from smsgate.store.audit import record_change
from smsgate.store.db import reading, writing


class SqlWordList:
    """The WordList port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def load_words(self) -> list[str]:
        with reading(self.engine) as conn:
            return list(conn.execute(sa.select(t.words.c.word)).scalars())

    def add_words(self, words: Iterable[str], category: str, now: datetime) -> int:
        wanted = list(dict.fromkeys(words))
        with writing(self.engine) as conn:
            have = set(conn.execute(sa.select(t.words.c.word)).scalars())
            new = [w for w in wanted if w not in have]
            if new:
                conn.execute(
                    t.words.insert(),
                    [{"word": w, "category": category, "created_at": now} for w in new],
                )
            record_change(conn, "words.add", f"{len(new)} words", category, now)
        return len(new)

    def remove_words(self, words: Iterable[str], now: datetime) -> int:
        with writing(self.engine) as conn:
            removed = conn.execute(t.words.delete().where(t.words.c.word.in_(list(words))))
            record_change(conn, "words.remove", f"{removed.rowcount} words", None, now)
        return int(removed.rowcount)

    def list_words(self) -> list[tuple[str, str]]:
        with reading(self.engine) as conn:
            rows = conn.execute(
                sa.select(t.words.c.word, t.words.c.category).order_by(t.words.c.word)
            ).all()
        return [(r.word, r.category) for r in rows]
