"""The Phone's call states change through one checked table (docs/spec/phone-api.md, "Call
states"): each path the spec names is allowed and told (call:state-changed, a log line
``old -> new``); a change the table does not list raises under test and is logged loudly in
production, the call going on; "held by the Phone itself" belongs to the held state."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest

from ivrbot.phone import call_state
from ivrbot.phone.call import Call
from ivrbot.phone.call_state import CHANGES, ENDED, CallState, IllegalCallChange
from ivrbot.phone.phone import Phone
from tests.phone.fake_transport import FakeTransport

pytestmark = pytest.mark.unit

S = CallState
PATHS = [  # the spec's paths, from a new call
    [S.CONNECTING, S.CONNECTED, S.DISCONNECTING, S.DISCONNECTED],  # placed, answered, hung up
    [S.REJECTED],  # an incoming call refused here
    [S.CANCELED],  # an incoming call given up by the caller while ringing
    [S.CONNECTING, S.CANCELED],  # cancel() of an outgoing call
    [S.CONNECTING, S.REJECTED],  # the callee is busy
    [S.CONNECTING, S.DISCONNECTED],  # the far end ended it before the media was up
    [S.CONNECTING, S.CONNECTED, S.HELD, S.CONNECTED, S.DISCONNECTED],  # hold, resume
    [S.CONNECTING, S.CONNECTED, S.MOVE_INITIATED, S.MOVED],
    [S.CONNECTING, S.CONNECTED, S.MOVE_INITIATED, S.MOVE_FAILED, S.CONNECTED],
    [S.CONNECTING, S.CONNECTED, S.MOVE_INITIATED, S.CONNECTED],  # the gateway refused
    [S.CONNECTING, S.CONNECTED, S.TRANSFERRING, S.TRANSFERRED],
    [S.CONNECTING, S.CONNECTED, S.TRANSFERRING, S.CONNECTED],  # the transfer failed
    [S.CONNECTING, S.CONNECTED, S.HELD, S.TRANSFERRED],  # the background call of a transfer
    [S.CONNECTING, S.CONNECTED, S.MODIFICATION_INITIATED, S.MODIFICATION_ACCEPTED, S.CONNECTED],
    [S.CONNECTING, S.CONNECTED, S.MODIFICATION_INITIATED, S.CONNECTED],  # rejected
    [S.CONNECTING, S.CONNECTED, S.MODIFICATION_ACCEPTED, S.CONNECTED],  # the far end's, accepted
    [S.CONNECTING, S.CONNECTED, S.HELD, S.MODIFICATION_ACCEPTED, S.HELD],  # accepted while held
]


@pytest.fixture
async def phone() -> Phone:
    return Phone("http://gateway.invalid", name="unit", transport=FakeTransport({}))


def new_call(phone: Phone) -> tuple[Call, list[tuple[str, str]]]:
    call = phone._lines.new(Call, "incoming", "sip:bob@ivrbot.local")
    changes: list[tuple[str, str]] = []
    phone.on("call:state-changed", lambda p: changes.append((p.old_state, p.new_state)))
    return call, changes


@pytest.mark.parametrize("path", PATHS, ids=lambda p: "-".join(s.value for s in p))
async def test_each_path_of_the_spec_is_allowed_and_told(
    phone: Phone, path: list[CallState], caplog: pytest.LogCaptureFixture
) -> None:
    call, changes = new_call(phone)
    caplog.set_level(logging.INFO, logger="ivrbot.phone.call_state")
    for state in path:
        call.set_state(state)
    assert call.state == path[-1]
    steps = list(zip([S.CREATED, *path], path, strict=False))
    assert changes == [(old.value, new.value) for old, new in steps]
    assert [r.getMessage() for r in caplog.records] == [
        f"unit call {call.index}: {old} -> {new}" for old, new in steps
    ]
    assert call.ended.is_set() == (path[-1] in ENDED)


async def test_the_same_state_again_is_no_change(phone: Phone) -> None:
    call, changes = new_call(phone)
    call.set_state(S.CONNECTING)
    call.set_state(S.CONNECTING)
    assert changes == [("created", "connecting")]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], S.CONNECTED),  # connected without connecting
        ([S.CONNECTING], S.HELD),  # hold before the call is up
        ([S.CONNECTING, S.CONNECTED, S.DISCONNECTING], S.CONNECTED),  # back from ending
        ([S.REJECTED], S.CONNECTING),  # an ended call stays ended
        ([S.CONNECTING, S.CONNECTED, S.MOVE_INITIATED, S.MOVED], S.CONNECTED),
    ],
)
async def test_a_change_the_table_does_not_allow_raises_under_test(
    phone: Phone, path: list[CallState], refused: CallState
) -> None:
    assert call_state.STRICT, "tests/conftest.py makes the call states strict"
    call, changes = new_call(phone)
    for state in path:
        call.set_state(state)
    told = list(changes)
    with pytest.raises(IllegalCallChange, match=f"{call.state} -> {refused}"):
        call.set_state(refused)
    assert call.state == (path[-1] if path else S.CREATED) and changes == told


async def test_in_production_a_refused_change_is_logged_loudly_and_the_call_goes_on(
    phone: Phone, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(call_state, "STRICT", False)
    call, changes = new_call(phone)
    call.set_state(S.CONNECTING)
    call.set_state(S.HELD)  # not allowed: logged, and done
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "connecting -> held is not a change" in errors[0].getMessage()
    assert errors[0].stack_info, "the log says where the bug is"
    assert call.state == S.HELD and changes[-1] == ("connecting", "held")


def test_every_state_is_in_the_table_and_ended_states_have_no_way_out() -> None:
    assert set(CHANGES) == set(CallState)
    assert all(new in CallState for targets in CHANGES.values() for new in targets)
    assert {state for state, targets in CHANGES.items() if not targets} == ENDED
    reachable = {S.CREATED}
    for _ in CallState:
        reachable |= {new for old in reachable for new in CHANGES[old]}
    assert reachable == set(CallState), "every state can be reached from a new call"


async def test_held_by_the_phone_itself_is_part_of_the_held_state(phone: Phone) -> None:
    call, _ = new_call(phone)
    for state in (S.CONNECTING, S.CONNECTED):
        call.set_state(state)
    call.set_state(S.HELD, auto=True)  # held for a second call: resumed when that one ends
    assert call.auto_held
    call.set_state(S.MODIFICATION_ACCEPTED)  # a media change while held keeps it
    call.set_state(S.HELD)
    assert call.auto_held
    call.set_state(S.CONNECTED)  # resumed: no longer
    assert not call.auto_held
    call.set_state(S.HELD)  # held by the application: not resumed by the Phone
    assert not call.auto_held


def test_a_call_s_state_is_assigned_in_one_place() -> None:
    root = Path(__file__).resolve().parents[2] / "ivrbot" / "phone"
    assigned: list[Any] = []
    for path in root.glob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\.state = ", line) or re.search(r"\bauto_held = ", line):
                assigned.append((path.name, line.strip()))
    assert assigned == [
        ("call.py", "self.state = CallState.CREATED"),
        ("call.py", "self.auto_held = False"),
        ("call.py", "self.state = new"),
        ("call.py", "self.auto_held = auto"),
        ("call.py", "self.auto_held = False"),
    ]
