"""The life of a message and of a reply push, as explicit state machines.

A message moves::

    accepted ──> submitted ──> delivered | undelivered | failed
       │             │
       │             └──> unknown ──> delivered | undelivered | failed
       ├──> failed | expired          (never reached the carrier: refunded)
       └──> unknown

``unknown`` means the process died while the message was in flight: we cannot
know whether the carrier took it, so the policy is to *never* re-send it
silently. It is not terminal because a late delivery report still resolves it.
``delivered``, ``undelivered``, ``failed`` and ``expired`` are terminal.

Every state change goes through :func:`transition`, so an impossible change
(a second delivery report, a report for an expired message) is an error the
caller must decide about, never a silent overwrite. Staying in the same state
is not a transition either: a duplicate report is the caller's to ignore.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from smsgate.errors import SmsgateError

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATES",
    "InvalidTransition",
    "MessageState",
    "PushState",
    "can_transition",
    "is_terminal",
    "refund_sources",
    "refundable",
    "report_sources",
    "sources",
    "transition",
]


class MessageState(StrEnum):
    """Where a message is; the values are what the database and the JSON API store."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class PushState(StrEnum):
    """Where the push of one reply (MO) to the account's URL is.

    ``failed`` is reached after the last scheduled attempt fails; the reply stays
    visible and an operator may re-push it by hand (which starts it ``pending`` again).
    """

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


_S = MessageState

ALLOWED_TRANSITIONS: Final[MappingProxyType[MessageState, frozenset[MessageState]]] = (
    MappingProxyType(
        {
            _S.ACCEPTED: frozenset({_S.SUBMITTED, _S.FAILED, _S.EXPIRED, _S.UNKNOWN}),
            _S.SUBMITTED: frozenset({_S.DELIVERED, _S.UNDELIVERED, _S.FAILED, _S.UNKNOWN}),
            _S.UNKNOWN: frozenset({_S.DELIVERED, _S.UNDELIVERED, _S.FAILED}),
            _S.DELIVERED: frozenset(),
            _S.UNDELIVERED: frozenset(),
            _S.FAILED: frozenset(),
            _S.EXPIRED: frozenset(),
        }
    )
)
"""For each state, the states it may move to; read-only so nobody widens it at run time."""

TERMINAL_STATES: Final[frozenset[MessageState]] = frozenset(
    s for s, targets in ALLOWED_TRANSITIONS.items() if not targets
)
"""States nothing can follow: derived from the table so the two cannot disagree."""

# A carrier has (or may have) the message and has not said how it ended: the states a
# delivery report can settle. `accepted` is not one: nothing was handed over yet.
_WITH_CARRIER: Final[frozenset[MessageState]] = frozenset({_S.SUBMITTED, _S.UNKNOWN})

# Only a message that never reached the carrier is given its money back: once
# submitted, the carrier has charged us whatever happens to the message.
_REFUNDED_MOVES: Final[frozenset[tuple[MessageState, MessageState]]] = frozenset(
    {(_S.ACCEPTED, _S.FAILED), (_S.ACCEPTED, _S.EXPIRED)}
)


class InvalidTransition(SmsgateError):
    """A state change the machine does not allow; carries both ends for the log."""

    def __init__(self, source: MessageState, target: MessageState) -> None:
        super().__init__(f"message cannot go from {source} to {target}")
        self.source = source
        self.target = target


def can_transition(source: MessageState, target: MessageState) -> bool:
    """Whether ``source -> target`` is allowed; lets callers branch without try/except."""
    return target in ALLOWED_TRANSITIONS[source]


def transition(source: MessageState, target: MessageState) -> MessageState:
    """Return ``target`` if the move is allowed, else raise :class:`InvalidTransition`.

    Returning the new state lets a caller write ``msg.state = transition(msg.state, x)``,
    so no code path can set a state without passing through the check.
    """
    if not can_transition(source, target):
        raise InvalidTransition(source, target)
    return target


def is_terminal(state: MessageState) -> bool:
    """Whether nothing can follow ``state``: the dispatcher and reports leave it alone."""
    return state in TERMINAL_STATES


def refundable(before: MessageState, after: MessageState) -> bool:
    """Whether the move ``before -> after`` gives the account its units back.

    Only a failure before submission (``accepted -> failed`` or ``accepted -> expired``)
    is refunded. ``accepted -> unknown`` is not: the carrier may have taken the message.
    Anything after submission, including ``unknown -> failed``, is not either.
    """
    return (before, after) in _REFUNDED_MOVES


def sources(target: MessageState) -> frozenset[MessageState]:
    """Every state that may move to ``target``: the guard a store puts on its update.

    Stores write ``WHERE state IN sources(target)`` instead of naming states, so that a
    new state or transition is one edit of :data:`ALLOWED_TRANSITIONS`.
    """
    return _SOURCES[target]


def report_sources(target: MessageState) -> frozenset[MessageState]:
    """The states a carrier's delivery report saying ``target`` may settle."""
    return _SOURCES[target] & _WITH_CARRIER


def refund_sources(target: MessageState) -> frozenset[MessageState]:
    """The states whose move to ``target`` gives the units back (see :func:`refundable`)."""
    return frozenset(s for s in _SOURCES[target] if refundable(s, target))


_SOURCES: Final[MappingProxyType[MessageState, frozenset[MessageState]]] = MappingProxyType(
    {
        target: frozenset(s for s, targets in ALLOWED_TRANSITIONS.items() if target in targets)
        for target in MessageState
    }
)
