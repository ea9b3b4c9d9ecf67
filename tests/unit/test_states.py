"""The message state machine: every pair of states is checked against the design's table."""

from __future__ import annotations

import itertools

import pytest

from smsgate.core.states import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    InvalidTransition,
    MessageState,
    PushState,
    can_transition,
    is_terminal,
    refundable,
    transition,
)
from smsgate.errors import SmsgateError

S = MessageState

# Written out by hand from the design, not derived from the module, so a change to the
# module's table that the design does not allow makes these tests fail.
EXPECTED_ALLOWED = {
    (S.ACCEPTED, S.SUBMITTED),
    (S.ACCEPTED, S.FAILED),
    (S.ACCEPTED, S.EXPIRED),
    (S.ACCEPTED, S.UNKNOWN),
    (S.SUBMITTED, S.DELIVERED),
    (S.SUBMITTED, S.UNDELIVERED),
    (S.SUBMITTED, S.FAILED),
    (S.SUBMITTED, S.UNKNOWN),
    (S.UNKNOWN, S.DELIVERED),
    (S.UNKNOWN, S.UNDELIVERED),
    (S.UNKNOWN, S.FAILED),
}
ALL_PAIRS = list(itertools.product(MessageState, repeat=2))
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in EXPECTED_ALLOWED]


def test_message_state_values_are_the_stored_strings() -> None:
    assert [s.value for s in MessageState] == [
        "accepted",
        "submitted",
        "delivered",
        "undelivered",
        "failed",
        "expired",
        "unknown",
    ]
    assert MessageState("delivered") is S.DELIVERED
    assert f"{S.EXPIRED}" == "expired"


def test_push_state_values_are_the_stored_strings() -> None:
    assert [s.value for s in PushState] == ["pending", "succeeded", "failed"]
    assert PushState("succeeded") is PushState.SUCCEEDED


@pytest.mark.parametrize(("source", "target"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition_is_permitted_and_returns_target(
    source: MessageState, target: MessageState
) -> None:
    assert can_transition(source, target) is True
    assert transition(source, target) is target


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_forbidden_transition_is_refused_and_raises(
    source: MessageState, target: MessageState
) -> None:
    assert can_transition(source, target) is False
    with pytest.raises(InvalidTransition) as caught:
        transition(source, target)
    assert caught.value.source is source
    assert caught.value.target is target
    assert str(caught.value) == f"message cannot go from {source} to {target}"


def test_same_state_is_not_a_transition() -> None:
    for state in MessageState:
        assert can_transition(state, state) is False


def test_late_report_resolves_unknown() -> None:
    state = transition(S.ACCEPTED, S.UNKNOWN)
    assert transition(state, S.DELIVERED) is S.DELIVERED


def test_unknown_is_never_resubmitted() -> None:
    assert can_transition(S.UNKNOWN, S.SUBMITTED) is False
    assert can_transition(S.UNKNOWN, S.ACCEPTED) is False


def test_invalid_transition_is_an_smsgate_error() -> None:
    with pytest.raises(SmsgateError):
        transition(S.DELIVERED, S.FAILED)


@pytest.mark.parametrize("state", [S.DELIVERED, S.UNDELIVERED, S.FAILED, S.EXPIRED])
def test_terminal_states_are_terminal(state: MessageState) -> None:
    assert is_terminal(state) is True


@pytest.mark.parametrize("state", [S.ACCEPTED, S.SUBMITTED, S.UNKNOWN])
def test_non_terminal_states_are_not_terminal(state: MessageState) -> None:
    assert is_terminal(state) is False


def test_terminal_set_matches_design() -> None:
    assert frozenset({S.DELIVERED, S.UNDELIVERED, S.FAILED, S.EXPIRED}) == TERMINAL_STATES


def test_transition_table_cannot_be_modified() -> None:
    with pytest.raises(TypeError):
        ALLOWED_TRANSITIONS[S.DELIVERED] = frozenset({S.FAILED})  # type: ignore[index]


@pytest.mark.parametrize(("before", "after"), [(S.ACCEPTED, S.FAILED), (S.ACCEPTED, S.EXPIRED)])
def test_failure_before_submission_is_refunded(before: MessageState, after: MessageState) -> None:
    assert refundable(before, after) is True


@pytest.mark.parametrize(
    ("before", "after"),
    [pair for pair in ALL_PAIRS if pair not in {(S.ACCEPTED, S.FAILED), (S.ACCEPTED, S.EXPIRED)}],
)
def test_nothing_else_is_refunded(before: MessageState, after: MessageState) -> None:
    assert refundable(before, after) is False
