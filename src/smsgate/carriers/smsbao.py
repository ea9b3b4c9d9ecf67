"""The ``smsbao`` carrier kind: relay through the SMSBao HTTP API (SMSBao, or another smsgate).

One GET per message to ``<url>/sms`` (``/wsms`` for international numbers, ``/voice`` for
voice codes) with ``u``, ``p`` (the MD5 of the password, or the ApiKey as is), ``m``, ``c``
and optionally ``g``; ``<url>/query`` gives the balance. What each answer means for the
message (docs/decisions.md, "Upstream HTTP providers"):

- ``0``: taken. SMSBao answers no id and sends no receipt, so the reference is ours
  (``<carrier>:<message id>``) and by default the message is reported delivered at once
  (``assume_delivered``; when off it stays ``submitted`` until the report timeout).
- ``41`` (the upstream is out of balance), HTTP 5xx other than 504, connection refused: not
  taken; queued again, the carrier cools and failover moves on to the next one.
- ``30`` ``40`` ``42`` ``43`` ``-1`` ``55``: a configuration error; the carrier stops (its
  status says why, an ERROR log line alerts) and takes nothing until its options change or
  the balance query (``/query``, same credentials and IP checks) is answered again.
- ``50`` ``51`` ``52`` ``54`` ``56`` ``57``: the content or number is refused; the message
  fails and is refunded.
- ``44`` ``53`` (the upstream's own frequency limits): not taken; queued again later.
- A timeout or lost connection after sending, HTTP 504, anything unexpected: ``unknown``.
  SMSBao has no idempotency key: a second try could send the message twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from smsgate.carriers import upstream
from smsgate.carriers.upstream import HttpLimits, MaybeSent, NotSent, UpstreamCarrier
from smsgate.core.messages import DeliveryReport, Kind, Outgoing, SubmitResult
from smsgate.core.states import MessageState
from smsgate.ports import DeliverySink

log = logging.getLogger(__name__)

PATHS = {Kind.SMS: "/sms", Kind.INTL: "/wsms", Kind.VOICE: "/voice"}
CONFIG_CODES = frozenset({"30", "40", "42", "43", "-1", "55"})
REFUSED_CODES = frozenset({"50", "51", "52", "54", "56", "57"})
THROTTLED_CODES = frozenset({"44", "53"})
MEANING = {
    "-1": "parameters incomplete",
    "30": "wrong password or ApiKey",
    "40": "account does not exist",
    "41": "upstream balance too low",
    "42": "account expired or disabled",
    "43": "this server's IP is not allowed",
    "44": "queried too often",
    "50": "sensitive word",
    "51": "invalid number",
    "52": "signature refused",
    "53": "frequency limit",
    "54": "no approved template matches",
    "55": "unknown product",
    "56": "content too long",
    "57": "number opted out",
}
ASSUMED = "no receipt from this upstream: delivered assumed on acceptance"


@dataclass(frozen=True)
class SmsbaoConfig:
    url: str = "https://api.smsbao.com"
    username: str = ""
    password: str = ""  # the login password (sent as its MD5)
    api_key: str = ""  # or the ApiKey (sent as is); wins over the password
    product: str = ""  # `g`
    assume_delivered: bool = True
    balance_interval: float = 60.0  # /query at most once a minute (the API's own limit)
    throttle_seconds: float = 60.0
    limits: HttpLimits = field(default_factory=HttpLimits)

    @property
    def credential(self) -> str:
        if self.api_key:
            return self.api_key
        return hashlib.md5(self.password.encode("utf-8")).hexdigest()


class SmsbaoCarrier(UpstreamCarrier):
    # /query checks the same credentials, IP and account state as /sms: while stopped by
    # a configuration error, the balance loop goes on and a good answer resumes the carrier.
    probes_when_stopped = True

    def __init__(self, config: SmsbaoConfig, name: str = "smsbao") -> None:
        super().__init__(name, config.limits)
        self._config = config
        self._base = config.url.rstrip("/")

    async def start(self, sink: DeliverySink) -> None:
        await super().start(sink)
        if self._config.balance_interval > 0:
            self._spawn(self._first_balance())

    async def _first_balance(self) -> None:
        await self.query_balance()

    def _loops(self) -> list[tuple[float, Callable[[], Awaitable[object]]]]:
        if self._config.balance_interval <= 0:
            return []
        return [(self._config.balance_interval, self.query_balance)]

    async def submit(self, batch: Sequence[Outgoing]) -> list[SubmitResult]:
        results = await super().submit(batch)
        if self._config.assume_delivered:
            at = datetime.now(UTC)
            self._report_later(
                [
                    DeliveryReport(self.name, r.carrier_ref, MessageState.DELIVERED, ASSUMED, at)
                    for r in results
                    if r.carrier_ref is not None
                ]
            )
        return results

    async def _submit_one(self, message: Outgoing) -> SubmitResult:
        params = {"u": self._config.username, "p": self._config.credential}
        if self._config.product:
            params["g"] = self._config.product
        params["m"] = message.phone
        params["c"] = message.content
        url = self._base + PATHS[message.kind]
        response = await self._exchange(message.id, self._request("GET", url, params=params))
        if isinstance(response, SubmitResult):
            return response
        return self.fate(message.id, response.status_code, response.text)

    def fate(self, message_id: int, status: int, body: str) -> SubmitResult:
        """What one HTTP answer of ``/sms`` means for the message (the module's table)."""
        if status == 504:
            self._state.error("HTTP 504")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP 504 (gateway timeout)")
        if status >= 500:
            self._state.error(f"HTTP {status}")
            return upstream.not_taken(message_id)
        code = body.strip().split("\n", 1)[0].strip()
        if status == 200 and code == "0":
            self._state.submitted += 1
            return upstream.taken(message_id, f"{self.name}:{message_id}")
        what = f"{self.name}: {code} {MEANING.get(code, '')}".rstrip()
        if status != 200:
            self._state.error(f"HTTP {status}")
            return upstream.maybe_taken(message_id, f"{self.name}: HTTP {status}")
        if code == "41":
            self._state.error(what)
            return upstream.not_taken(message_id)
        if code in CONFIG_CODES:
            self._state.stop(self.name, what)
            return upstream.not_taken(message_id)
        if code in REFUSED_CODES:
            return upstream.refused(message_id, what)
        if code in THROTTLED_CODES:
            self._state.error(what)
            return SubmitResult(message_id, retry_after=self._config.throttle_seconds)
        self._state.error(f"unexpected answer {body[:60]!r}")
        return upstream.maybe_taken(message_id, f"{self.name}: unexpected answer {body[:60]!r}")

    async def query_balance(self) -> int | None:
        """The upstream's remaining units (``/query``), also kept for ``status()``."""
        params = {"u": self._config.username, "p": self._config.credential}
        try:
            response = await self._request("GET", self._base + "/query", params=params)
        except (NotSent, MaybeSent) as exc:
            self._state.error(f"balance: {exc}")
            return None
        first, _, second = response.text.strip().partition("\n")
        code = first.strip()
        if response.status_code != 200 or code != "0":
            if code in CONFIG_CODES:
                self._state.stop(self.name, f"{self.name}: {code} {MEANING.get(code, '')}")
            return None
        try:
            balance = int(second.partition(",")[2])
        except ValueError:
            return None
        self._state.balance, self._state.balance_at = balance, datetime.now(UTC)
        self._state.resume(self.name)
        return balance


def build(name: str, options: Mapping[str, object]) -> SmsbaoCarrier:
    if not options.get("password") and not options.get("api_key"):
        raise ValueError("kind smsbao needs --password or --opt api_key=KEY")
    default = SmsbaoConfig()
    config = SmsbaoConfig(
        url=upstream.text(options, "url", default.url),
        username=upstream.text(options, "username"),
        password=upstream.text(options, "password"),
        api_key=upstream.text(options, "api_key"),
        product=upstream.text(options, "product"),
        assume_delivered=bool(options.get("assume_delivered", default.assume_delivered)),
        balance_interval=upstream.number(options, "balance_interval", default.balance_interval),
        limits=upstream.limits_from(options),
    )
    return SmsbaoCarrier(config, name)
