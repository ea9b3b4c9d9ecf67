"""The in-memory view that the hot path reads: accounts, products, words, templates,
opt-outs and frequency caps.

Admin commands write the database and bump ``config_rev``; a server polls that
counter and reloads when it moves, so a change is seen within one poll interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from smsgate import errors
from smsgate.core.accounts import Account, Product, TemplateStatus
from smsgate.core.templates import Template, compile_template
from smsgate.core.upstream_templates import UpstreamTemplate
from smsgate.core.words import WordFilter
from smsgate.ports import AccountStore, PolicyStore

log = logging.getLogger(__name__)

Limits = dict[str, int | None]


@dataclass(frozen=True, slots=True)
class Snapshot:
    rev: int
    accounts: dict[str, Account] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    words: WordFilter = field(default_factory=lambda: WordFilter.build(()))
    by_api_key: dict[str, Account] = field(default_factory=dict)  # key hash -> account
    templates: dict[tuple[int, str], tuple[Template, ...]] = field(default_factory=dict)
    optouts: dict[int, frozenset[str]] = field(default_factory=dict)
    # carrier -> the approved templates mapped to its provider codes (template-based upstreams)
    upstream_templates: dict[str, tuple[UpstreamTemplate, ...]] = field(default_factory=dict)
    template_carriers: frozenset[str] = frozenset()  # carriers that send only mapped templates
    account_limits: dict[int, Limits] = field(default_factory=dict)
    product_limits: dict[str, Limits] = field(default_factory=dict)


class SnapshotHolder:
    """Holds the newest Snapshot; `refresh()` is cheap when nothing changed."""

    def __init__(self, store: AccountStore, policy: PolicyStore) -> None:
        self._store = store
        self._policy = policy
        self._current = self._load()

    @property
    def current(self) -> Snapshot:
        return self._current

    def refresh(self) -> bool:
        """Reload if an admin change happened; True when it did."""
        if self._store.config_rev() == self._current.rev:
            return False
        self._current = self._load()
        return True

    def _load(self) -> Snapshot:
        # Read the counter first: a change that lands during the load bumps it again,
        # so the next refresh reloads rather than missing it.
        rev = self._store.config_rev()
        accounts = self._store.load_accounts()
        return Snapshot(
            rev=rev,
            accounts={a.username: a for a in accounts},
            products={p.id: p for p in self._store.load_products()},
            words=WordFilter.build(self._store.load_words()),
            by_api_key={h: a for a in accounts for h in a.api_key_hashes},
            templates=self._approved_templates(),
            upstream_templates=self._upstream_templates(),
            template_carriers=self._policy.template_carriers(),
            optouts=self._policy.optouts(),
            account_limits=self._policy.account_limits(),
            product_limits=self._policy.product_limits(),
        )

    def _upstream_templates(self) -> dict[str, tuple[UpstreamTemplate, ...]]:
        approved = {r.id: r.text for r in self._policy.templates(status=TemplateStatus.APPROVED)}
        grouped: dict[str, list[UpstreamTemplate]] = {}
        for template_id, carrier, code in self._policy.upstream_templates():
            text = approved.get(template_id)
            if text is None:
                continue  # mapped, but not (or no longer) approved
            try:
                compiled = compile_template(text)
            except errors.InvalidInput:
                continue
            grouped.setdefault(carrier, []).append(
                UpstreamTemplate(template_id, carrier, code, compiled)
            )
        return {carrier: tuple(entries) for carrier, entries in grouped.items()}

    def _approved_templates(self) -> dict[tuple[int, str], tuple[Template, ...]]:
        grouped: dict[tuple[int, str], list[Template]] = {}
        for row in self._policy.templates(status=TemplateStatus.APPROVED):
            try:
                compiled = compile_template(row.text)
            except errors.InvalidInput:
                log.error("approved template #%d no longer compiles; ignored", row.id)
                continue
            grouped.setdefault((row.account_id, row.product_id), []).append(compiled)
        return {key: tuple(value) for key, value in grouped.items()}
