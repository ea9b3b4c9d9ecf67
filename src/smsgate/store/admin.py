"""The AccountStore port as one object: the operator's view of the configuration.

The operator service (``services/admin.py``) and the send path's snapshot both work
across accounts, the ledger, the catalog and the word list, so the composition hands
them one store. Each subject's SQL is its own module; this class only joins them over
one engine and adds the configuration revision they all move.
"""

from __future__ import annotations

from smsgate.store.accounts import SqlAccounts
from smsgate.store.audit import config_rev
from smsgate.store.catalog import SqlCatalog
from smsgate.store.db import reading
from smsgate.store.ledger import SqlLedger
from smsgate.store.words import SqlWordList


class SqlAccountStore(SqlAccounts, SqlLedger, SqlCatalog, SqlWordList):
    """The AccountStore port on SQLAlchemy Core (SQLite or PostgreSQL)."""

    def config_rev(self) -> int:
        with reading(self.engine) as conn:
            return config_rev(conn)
