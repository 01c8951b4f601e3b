"""What each action on a call requires of the call's phase (pure logic): one thing at a
time happens to a connected call; hold and resume work whatever else is going on."""

from __future__ import annotations

import pytest

from ivrbot.core.call_state import CallPhase, CallStateError, PartyState
from ivrbot.core.modifications import ON_HOLD, require
from ivrbot.core.sessions import Session
from ivrbot.core.switch_call import CallLeg, SwitchCall

pytestmark = pytest.mark.unit

CONNECTED = frozenset({CallPhase.CONNECTED})


def leg_in(state: CallPhase) -> CallLeg:
    session = Session("s1", "alice@example.com", "digest", float("inf"))
    call = SwitchCall("c1", "sip:alice@example.com", "sip:bob@example.com", state=state)
    leg = CallLeg("l1", session, object(), "caller", call, object())  # type: ignore[arg-type]
    session.calls[leg.id] = leg
    return leg


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (CallPhase.MODIFYING, "a media modification is pending"),
        (CallPhase.MOVING, "a move is in progress"),
        (CallPhase.MOVE_CONNECTING, "a move is in progress"),
        (CallPhase.MERGED, "the call is in a conference"),
    ],
)
def test_a_move_a_change_or_a_transfer_of_a_busy_call_is_refused_saying_why(
    state: CallPhase, why: str
) -> None:
    leg = leg_in(state)
    for action in ("initiate-call-move", "initiate-call-mod", "initiate-call-transfer"):
        with pytest.raises(CallStateError) as refused:
            require(leg, action, CONNECTED)
        assert refused.value.action == f"{action} ({why})"


@pytest.mark.parametrize("state", sorted(ON_HOLD))
def test_hold_works_while_the_parties_are_connected_or_merged(state: CallPhase) -> None:
    leg = leg_in(state)
    assert require(leg, "initiate-call-hold", ON_HOLD) is leg.call


@pytest.mark.parametrize(
    "state", [CallPhase.RINGING, CallPhase.ANSWERING, CallPhase.CONNECTING, CallPhase.ENDED]
)
def test_no_action_on_a_call_not_connected_yet_or_over(state: CallPhase) -> None:
    with pytest.raises(CallStateError) as refused:
        require(leg_in(state), "initiate-call-hold", ON_HOLD)
    assert refused.value.action == "initiate-call-hold"


def test_a_move_target_not_answered_yet_cannot_hold() -> None:
    leg = leg_in(CallPhase.MOVING)
    leg.state = PartyState.RINGING
    with pytest.raises(CallStateError) as refused:
        require(leg, "initiate-call-hold", ON_HOLD)
    assert refused.value.action == "initiate-call-hold (not answered)"


def test_a_leg_no_longer_in_its_session_is_refused() -> None:
    leg = leg_in(CallPhase.CONNECTED)
    leg.session.calls.clear()  # dropped (moved, transferred) while the request came in
    with pytest.raises(CallStateError):
        require(leg, "initiate-call-hold", ON_HOLD)
