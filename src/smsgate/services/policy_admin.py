"""Operator use cases for templates (报备), frequency caps and opt-outs."""

from __future__ import annotations

from smsgate import errors
from smsgate.core.accounts import TemplateRecord, TemplateStatus
from smsgate.core.phones import parse_domestic
from smsgate.core.templates import compile_template
from smsgate.ports import Clock, PolicyStore

MAX_CAP = 1_000_000
FREQUENCY_FIELDS = ("freq_per_minute", "freq_per_hour", "freq_per_day")


class PolicyAdmin:
    def __init__(self, store: PolicyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def apply_template(self, username: str, product_id: str, text: str) -> int:
        """An account applies for a template; it is pending until an operator reviews it."""
        compile_template(text)  # refuses malformed text before anyone reviews it
        return self._store.add_template(username, product_id, text.strip(), self._clock.now())

    def review(self, template_id: int, approve: bool, note: str | None = None) -> TemplateRecord:
        status = TemplateStatus.APPROVED if approve else TemplateStatus.REJECTED
        return self._store.review_template(template_id, status, note, self._clock.now())

    def set_upstream(self, template_id: int, carrier: str, code: str | None) -> TemplateRecord:
        """Map a template to its code at a template-based upstream (None: remove the mapping)."""
        if not carrier.strip():
            raise errors.InvalidInput("give the upstream carrier's name (--carrier)")
        if code is not None and not code.strip():
            raise errors.InvalidInput("give the provider's template code (--code)")
        return self._store.set_upstream_template(
            template_id, carrier.strip(), None if code is None else code.strip(), self._clock.now()
        )

    def upstream_templates(self) -> list[tuple[int, str, str]]:
        return self._store.upstream_templates()

    def templates(
        self, status: TemplateStatus | None = None, username: str | None = None
    ) -> list[TemplateRecord]:
        return self._store.templates(status=status, username=username)

    def set_account_limits(self, username: str, values: dict[str, int | None]) -> None:
        _check_caps(values, (*FREQUENCY_FIELDS, "daily_cap"))
        self._store.set_account_limits(username, values, self._clock.now())

    def set_product_limits(self, product_id: str, values: dict[str, int | None]) -> None:
        _check_caps(values, FREQUENCY_FIELDS)
        self._store.set_product_limits(product_id, values, self._clock.now())

    def remove_optout(self, username: str, phone: str) -> bool:
        national = parse_domestic(phone)[0].national
        return self._store.remove_optout(username, national, self._clock.now())


def _check_caps(values: dict[str, int | None], allowed: tuple[str, ...]) -> None:
    if not values:
        raise errors.InvalidInput("nothing to change: give at least one limit")
    for name, value in values.items():
        if name not in allowed:
            raise errors.InvalidInput(f"{name} is not a limit here")
        if value is not None and not 0 <= value <= MAX_CAP:
            raise errors.InvalidInput(f"a limit is 0-{MAX_CAP} (0 blocks sending); got {value}")
