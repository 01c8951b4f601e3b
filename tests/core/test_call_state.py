"""The gateway's one state machine (pure logic): which changes each state allows."""

from __future__ import annotations

import itertools
import logging

import pytest

from ivrbot.core.call_state import (
    CALL_CHANGES,
    LEG_CHANGES,
    CallPhase,
    IllegalChange,
    LegState,
    change,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("table", [CALL_CHANGES, LEG_CHANGES])
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
    path = [CallPhase.RINGING, CallPhase.CONNECTING, CallPhase.CONNECTED, CallPhase.MERGED]
    for old, new in itertools.pairwise(path):
        assert change("call x", old, new, CALL_CHANGES) is True
    assert change("call x", CallPhase.MERGED, CallPhase.MERGED, CALL_CHANGES) is False
    assert "call x: connected -> merged" in caplog.text


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (CallPhase.ENDED, CallPhase.CONNECTED),
        (CallPhase.RINGING, CallPhase.CONNECTED),
        (CallPhase.MERGED, CallPhase.CONNECTED),
        (CallPhase.CONNECTED, CallPhase.RINGING),
    ],
)
def test_a_change_the_call_state_does_not_allow_is_refused(old: CallPhase, new: CallPhase) -> None:
    with pytest.raises(IllegalChange, match=f"{old} -> {new}"):
        change("call x", old, new, CALL_CHANGES)


def test_a_conference_leg_holds_and_resumes_but_never_comes_back_once_ended() -> None:
    assert change("leg", LegState.JOINED, LegState.HELD, LEG_CHANGES)
    assert change("leg", LegState.HELD, LegState.JOINED, LEG_CHANGES)
    with pytest.raises(IllegalChange):
        change("leg", LegState.ENDED, LegState.JOINED, LEG_CHANGES)
    with pytest.raises(IllegalChange):
        change("leg", LegState.INVITED, LegState.HELD, LEG_CHANGES)
