"""The gateway's state machines (pure logic): which changes each state allows, every
allowed change made and logged, every other refused, and what belongs to a phase going
with it."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from ivrbot.core.call_state import (
    CALL_CHANGES,
    LEG_CHANGES,
    PARTY_CHANGES,
    CallPhase,
    IllegalChange,
    LegState,
    PartyState,
    change,
)
from ivrbot.core.switch_call import SwitchCall

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("table", [CALL_CHANGES, PARTY_CHANGES, LEG_CHANGES])
def test_every_state_has_its_changes_and_ends(table: dict) -> None:
    states = set(table)
    assert states == set(type(next(iter(table))))  # every state of the enum is listed
    for old, targets in table.items():
        assert targets <= states
        if old.value != "ended":
            assert any(t.value == "ended" for t in targets), f"{old} cannot end"
    assert not table[next(s for s in states if s.value == "ended")]  # ended is final


def test_a_call_goes_ringing_to_ended_through_the_allowed_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivrbot.core.state")
    path = [
        CallPhase.RINGING, CallPhase.ANSWERING, CallPhase.CONNECTING, CallPhase.CONNECTED,
        CallPhase.MODIFYING, CallPhase.CONNECTED, CallPhase.MOVING, CallPhase.MOVE_CONNECTING,
        CallPhase.CONNECTED, CallPhase.MERGED, CallPhase.ENDED,
    ]  # fmt: skip
    for old, new in itertools.pairwise(path):
        assert change("call x", old, new, CALL_CHANGES) is True
    assert change("call x", CallPhase.MERGED, CallPhase.MERGED, CALL_CHANGES) is False
    assert "call x: connected -> merged" in caplog.text
    assert "call x: moving -> move-connecting" in caplog.text


ALLOWED = [(old, new) for old, targets in CALL_CHANGES.items() for new in sorted(targets)]


@pytest.mark.parametrize(("old", "new"), ALLOWED, ids=[f"{o}->{n}" for o, n in ALLOWED])
def test_every_allowed_change_of_a_call_is_made_and_logged(
    old: CallPhase, new: CallPhase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivrbot.core.state")
    call = SwitchCall("c1", "sip:a@x", "sip:b@x", state=old)
    call.set_state(new)
    assert call.state is new
    assert f"call c1: {old} -> {new}" in caplog.text


REFUSED = [
    (old, new)
    for old in CallPhase
    for new in CallPhase
    if new is not old and new not in CALL_CHANGES[old]
]


@pytest.mark.parametrize(("old", "new"), REFUSED, ids=[f"{o}->{n}" for o, n in REFUSED])
def test_a_change_the_call_state_does_not_allow_is_refused(old: CallPhase, new: CallPhase) -> None:
    call = SwitchCall("c1", "sip:a@x", "sip:b@x", state=old)
    with pytest.raises(IllegalChange, match=f"{old} -> {new}"):
        call.set_state(new)
    assert call.state is old


def test_one_thing_at_a_time_happens_to_a_connected_call() -> None:
    """A media modification, a move and a merge each start only from connected (a move
    whose target's answer could not be applied rings on)."""

    def into(new: CallPhase) -> set[CallPhase]:
        return {old for old, targets in CALL_CHANGES.items() if new in targets}

    assert into(CallPhase.MODIFYING) == into(CallPhase.MERGED) == {CallPhase.CONNECTED}
    assert into(CallPhase.MOVING) == {CallPhase.CONNECTED, CallPhase.MOVE_CONNECTING}
    assert into(CallPhase.ANSWERING) == {CallPhase.RINGING}


async def test_what_belongs_to_a_phase_goes_when_the_call_leaves_it() -> None:
    """The ring timer is cancelled once the call is answered; the mover and the pending
    modification are forgotten once the move or the modification is over."""
    call = SwitchCall("c1", "sip:a@x", "sip:b@x")
    timer = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    call.ring_timer = timer
    call.set_state(CallPhase.ANSWERING)
    assert call.ring_timer is timer  # still ringing: the answer may yet fail
    call.set_state(CallPhase.CONNECTING)
    await asyncio.sleep(0)
    assert call.ring_timer is None and timer.cancelled()
    call.set_state(CallPhase.CONNECTED)
    call.set_state(CallPhase.MOVING)
    call.mover = object()  # type: ignore[assignment]
    call.set_state(CallPhase.MOVE_CONNECTING)
    assert call.mover is not None
    call.set_state(CallPhase.CONNECTED)
    assert call.mover is None
    call.set_state(CallPhase.MODIFYING)
    call.mod = object()  # type: ignore[assignment]
    call.set_state(CallPhase.ENDED)
    assert call.mod is None


async def test_the_ring_timer_ending_its_own_call_is_not_cancelled() -> None:
    call = SwitchCall("c1", "sip:a@x", "sip:b@x")

    async def no_answer() -> bool:
        call.set_state(CallPhase.ENDED)
        await asyncio.sleep(0)
        return True

    call.ring_timer = asyncio.get_running_loop().create_task(no_answer())
    assert await call.ring_timer is True
    assert call.ring_timer is None


def test_a_party_of_a_call_answers_holds_resumes_and_never_comes_back_once_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ivrbot.core.state")
    path = [PartyState.RINGING, PartyState.ACTIVE, PartyState.HELD, PartyState.ACTIVE]
    for old, new in itertools.pairwise([*path, PartyState.HELD, PartyState.ENDED]):
        assert change("leg l1", old, new, PARTY_CHANGES) is True
    assert "leg l1: ringing -> active" in caplog.text
    for old, new in [
        (PartyState.RINGING, PartyState.HELD),  # a party not answered has nothing to hold
        (PartyState.ENDED, PartyState.ACTIVE),
        (PartyState.HELD, PartyState.RINGING),
    ]:
        with pytest.raises(IllegalChange, match=f"{old} -> {new}"):
            change("leg l1", old, new, PARTY_CHANGES)


def test_a_conference_leg_holds_and_resumes_but_never_comes_back_once_ended() -> None:
    assert change("leg", LegState.JOINED, LegState.HELD, LEG_CHANGES)
    assert change("leg", LegState.HELD, LegState.JOINED, LEG_CHANGES)
    with pytest.raises(IllegalChange):
        change("leg", LegState.ENDED, LegState.JOINED, LEG_CHANGES)
    with pytest.raises(IllegalChange):
        change("leg", LegState.INVITED, LegState.HELD, LEG_CHANGES)
