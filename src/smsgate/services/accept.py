"""Accepting a send request: every check in protocol order, then charge and enqueue.

Order (protocol.md; the first failure decides): parameters (-1), account (40),
credentials (30), expired/disabled (42), IP (43) — those are the caller's, done by
`Authenticator` — then product (55), numbers (51), length (56), signature (52),
sensitive words (50), template (54), opt-out (57), frequency (53), balance (41).
Nothing is charged or queued unless every check passes; `0` is answered only after
the charge and the messages are committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from smsgate import errors
from smsgate.core import phones as phone_rules
from smsgate.core.accounts import Account, Product
from smsgate.core.frequency import FrequencyLimits
from smsgate.core.messages import Charge, Kind
from smsgate.core.signatures import check_signature
from smsgate.core.templates import check_template
from smsgate.core.units import check_characters, check_length, units
from smsgate.core.upstream_templates import check_upstream_templates
from smsgate.ports import ChargeWriter, Clock
from smsgate.services.frequency import FrequencyGuard
from smsgate.services.snapshot import Snapshot, SnapshotHolder

DEFAULT_PRODUCT = "general"
VOICE_CODE = re.compile(r"^[0-9]{4,8}$")
VOICE_UNITS = 1  # one call, whatever the code


@dataclass(frozen=True, slots=True)
class SendRequest:
    kind: Kind
    product: str  # `g`; empty means the default general product
    phones: str  # `m`, as received
    content: str  # `c`, decoded
    client_ip: str
    report_ids: tuple[str, ...] = ()  # CMPP: Msg_Ids owed a status report (core.messages)


class AcceptService:
    def __init__(
        self,
        snapshot: SnapshotHolder,
        frequency: FrequencyGuard,
        writer: ChargeWriter,
        clock: Clock,
        notify: Callable[[], None] = lambda: None,
    ) -> None:
        self._snapshot = snapshot
        self._frequency = frequency
        self._writer = writer
        self._clock = clock
        self._notify = notify  # wakes the dispatcher after a commit
        # The frequency limits of (account, product), worked out once per snapshot.
        self._limits: dict[tuple[int, str], FrequencyLimits] = {}
        self._limits_rev = -1

    async def accept(self, account: Account, request: SendRequest) -> int:
        """Check, charge and enqueue; the batch id, or Rejected with the first failed code."""
        snap = self._snapshot.current
        check_characters(request.content)  # the wire fronts check it first; CMPP too
        charge = self._checked_charge(snap, account, request)
        limits = self._limits_for(snap, account.id, charge.product_id)
        reservation = self._frequency.reserve(
            account.id, charge.phones, charge.content, limits, charge.at
        )
        try:
            batch_id = await self._writer.write(charge)
        except BaseException:
            self._frequency.release(reservation)
            raise
        if batch_id is None:
            self._frequency.release(reservation)
            raise errors.Rejected(errors.INSUFFICIENT_BALANCE, f"costs {charge.cost} units")
        self._notify()
        return batch_id

    def _limits_for(self, snap: Snapshot, account_id: int, product_id: str) -> FrequencyLimits:
        if snap.rev != self._limits_rev:
            self._limits, self._limits_rev = {}, snap.rev
        limits = self._limits.get((account_id, product_id))
        if limits is None:
            limits = self._frequency.limits_for(
                snap.account_limits.get(account_id), snap.product_limits.get(product_id)
            )
            self._limits[(account_id, product_id)] = limits
        return limits

    def _checked_charge(self, snap: Snapshot, account: Account, request: SendRequest) -> Charge:
        product = _product(snap, account, request.product)
        numbers = _numbers(request.kind, request.phones)
        content = request.content
        if request.kind is Kind.VOICE:
            if not VOICE_CODE.match(content):
                raise errors.Rejected(errors.PARAMS_INCOMPLETE, "a voice code is 4-8 digits")
            message_units = VOICE_UNITS
        else:
            check_length(content)
            check_signature(content, account.signatures)
            snap.words.check(content)
            message_units = units(content)
        check_template(
            content, snap.templates.get((account.id, product.id), ()), product.template_required
        )
        check_upstream_templates(
            content, product.route, snap.template_carriers, snap.upstream_templates
        )
        opted_out = snap.optouts.get(account.id, frozenset())
        blocked = [n for n in numbers if n in opted_out]
        if blocked:
            raise errors.Rejected(errors.OPTED_OUT, blocked[0])
        return Charge(
            account_id=account.id,
            product_id=product.id,
            kind=request.kind,
            phones=tuple(numbers),
            content=content,
            units=message_units,
            price=product.price,
            carrier=product.route[0] if product.route else "",
            client_ip=request.client_ip,
            at=self._clock.now(),
            report_ids=request.report_ids,
        )


def _product(snap: Snapshot, account: Account, g: str) -> Product:
    wanted = g.strip() or DEFAULT_PRODUCT
    if account.unknown_g_default and wanted not in snap.products:
        wanted = DEFAULT_PRODUCT  # a migrating client's provider product id
    product = snap.products.get(wanted)
    if product is None or (product.private and product.id not in account.products):
        raise errors.Rejected(errors.BAD_PRODUCT, g)
    return product


def _numbers(kind: Kind, m: str) -> list[str]:
    """Numbers as stored and sent: mainland national digits, else E.164."""
    if kind is Kind.SMS:
        return [p.national for p in phone_rules.parse_domestic(m)]
    if kind is Kind.VOICE:
        return [phone_rules.parse_single_domestic(m).national]
    return [p.national if p.country == "CN" else p.e164 for p in phone_rules.parse_international(m)]
