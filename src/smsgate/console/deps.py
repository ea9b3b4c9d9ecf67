"""What the console is given by the composition root: services and a few callables."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from smsgate.ports import Clock, ConsoleStore, MessageReader
from smsgate.services.accept import AcceptService
from smsgate.services.admin import AdminService
from smsgate.services.auth import Authenticator
from smsgate.services.carrier_admin import CarrierAdmin
from smsgate.services.inbound import InboundService
from smsgate.services.operators import OperatorService
from smsgate.services.policy_admin import PolicyAdmin
from smsgate.services.snapshot import SnapshotHolder


@dataclass(frozen=True, slots=True)
class PushProbe:
    """The answer to the "test push" button: the status (None: no answer), the time."""

    status: int | None
    millis: float
    error: str | None = None


@dataclass(frozen=True)
class ConsoleDeps:
    snapshot: SnapshotHolder
    auth: Authenticator
    admin: AdminService
    policy: PolicyAdmin
    inbound: InboundService
    carriers: CarrierAdmin
    store: ConsoleStore
    operators: OperatorService
    messages: MessageReader
    accept: AcceptService
    clock: Clock
    wake_pushes: Callable[[], None]
    simulator_on: Callable[[], bool]
    test_push: Callable[[str], Awaitable[PushProbe]]
    secret: bytes
    session_seconds: float
