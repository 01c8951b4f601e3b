"""One call handle (pure logic, fakes): a session keeps every call as a handle, and acting on
or ending a call reaches what runs it (this process's switch, or the media worker it was
relayed to) without the caller asking which kind it is."""

from __future__ import annotations

from typing import Any

import pytest

from ivrbot.core.actions import CallAction, apply_action
from ivrbot.core.handle import CallHandle
from ivrbot.core.relayed import RelayedLeg
from ivrbot.core.sessions import Session
from ivrbot.core.switch_call import CallLeg, SwitchCall

pytestmark = pytest.mark.unit


class FakeWorker:
    """A media worker: records what it is asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, Any]] = []

    async def act(self, leg: RelayedLeg, action: CallAction) -> str | None:
        self.asked.append(("act", leg.id, action))
        return "mod-on-worker" if action.name == "initiate-call-hold" else None

    async def end(self, leg: RelayedLeg, reason: str) -> None:
        self.asked.append(("end", leg.id, reason))


class FakeSwitch:
    """The switch's side of a direct call: the actions' dispatch (core/actions.py) lands
    on these methods."""

    def __init__(self) -> None:
        self.asked: list[tuple[Any, ...]] = []

    async def act(self, leg: CallLeg, action: CallAction) -> str | None:
        return await apply_action(self, leg, action)  # type: ignore[arg-type]

    async def hold(self, leg: CallLeg, sdp: str | None = None) -> str:
        self.asked.append(("hold", leg.id, sdp))
        return "mod-here"

    async def resume(self, leg: CallLeg, sdp: str | None = None) -> str:
        self.asked.append(("resume", leg.id, sdp))
        return "mod-here"

    async def answer(self, leg: CallLeg, sdp: str) -> None:
        self.asked.append(("answer", leg.id, sdp))

    async def move(self, leg: CallLeg) -> None:
        self.asked.append(("move", leg.id))

    async def transfer(self, leg: CallLeg, target: str) -> None:
        self.asked.append(("transfer", leg.id, target))

    async def modify(self, leg: CallLeg, media: str, sdp: str | None = None) -> str:
        self.asked.append(("modify", leg.id, media))
        return "mod-change"

    async def settle_mod(self, leg: CallLeg, mod_id: str, ok: bool, sdp: str | None) -> None:
        self.asked.append(("settle", leg.id, mod_id, ok))

    async def end(self, leg: CallLeg, reason: str, by_gateway: bool = False) -> None:
        self.asked.append(("end", leg.id, reason, by_gateway))

    def transfer_out(self, leg: CallLeg, target: str) -> None:
        self.asked.append(("hand-off", leg.id, target))


def session_with_both() -> tuple[Session, FakeSwitch, FakeWorker]:
    session = Session("s1", "alice@example.com", "digest", float("inf"))
    switch, worker = FakeSwitch(), FakeWorker()
    call = SwitchCall("call-1", "sip:alice@example.com", "sip:bob@example.com")
    direct = CallLeg("direct", session, object(), "caller", call, switch)  # type: ignore[arg-type]
    relayed = RelayedLeg("relayed", session, worker, "call-on-worker")
    session.calls[direct.id] = direct
    session.calls[relayed.id] = relayed
    return session, switch, worker


async def test_an_action_reaches_the_switch_or_the_worker_through_one_handle() -> None:
    session, switch, worker = session_with_both()
    hold = CallAction("initiate-call-hold", sdp="v=0 sendonly")
    mod_ids = {cid: await handle.act(hold) for cid, handle in session.calls.items()}
    assert mod_ids == {"direct": "mod-here", "relayed": "mod-on-worker"}
    assert switch.asked == [("hold", "direct", "v=0 sendonly")]
    assert worker.asked == [("act", "relayed", hold)]


async def test_ending_a_call_reaches_what_runs_it() -> None:
    session, switch, worker = session_with_both()
    for handle in session.calls.values():
        await handle.end("Call terminated")
    assert switch.asked == [("end", "direct", "Call terminated", False)]  # the session's own
    assert worker.asked == [("end", "relayed", "Call terminated")]


async def test_every_action_of_a_direct_call_goes_to_its_switch_method() -> None:
    session, switch, _ = session_with_both()
    direct: CallHandle = session.calls["direct"]
    actions = [
        CallAction("call-answer", sdp="answer"),
        CallAction("initiate-call-resume"),
        CallAction("initiate-call-move"),
        CallAction("initiate-call-transfer", target="other"),
        CallAction("initiate-call-mod", media="video"),
        CallAction("accept-call-mod", mod_id="m1"),
        CallAction("reject-call-mod", mod_id="m2"),
    ]
    replies = [await direct.act(action) for action in actions]
    assert replies == [None, "mod-here", None, None, "mod-change", None, None]
    assert switch.asked == [
        ("answer", "direct", "answer"),
        ("resume", "direct", None),
        ("move", "direct"),
        ("transfer", "direct", "other"),
        ("modify", "direct", "video"),
        ("settle", "direct", "m1", True),
        ("settle", "direct", "m2", False),
    ]


def test_a_handle_names_its_call_and_its_resource() -> None:
    session, _, _ = session_with_both()
    direct, relayed = session.calls["direct"], session.calls["relayed"]
    assert direct.resource_url == "/RTC/v1/sessions/s1/calls/direct"
    assert relayed.resource_url == "/RTC/v1/sessions/s1/calls/relayed"
    assert (direct.call_id, relayed.call_id) == ("call-1", "call-on-worker")
    assert RelayedLeg("r2", session, FakeWorker()).call_id == "r2"  # an older worker's reply


def test_a_blind_transfer_is_handed_to_the_far_end_only_of_a_call_here() -> None:
    session, switch, _ = session_with_both()
    assert session.calls["relayed"].hand_off("+15550001000") is None
    session.calls["direct"].hand_off("+15550001000")
    assert switch.asked == [("hand-off", "direct", "+15550001000")]
