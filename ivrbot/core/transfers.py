"""Transfer (a session joins the far parties of its two calls and leaves both) and move (the
user's other sessions ring; the one that answers takes the call over: core/connecting.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivrbot.core import events as ev
from ivrbot.core import ringing
from ivrbot.core.call_state import CallPhase, CallStateError, PartyState, Reason
from ivrbot.core.switch_call import CallLeg, SwitchCall

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch

CONNECTED = frozenset({CallPhase.CONNECTED})


async def transfer(sw: Switch, leg: CallLeg, target_id: str) -> None:
    """The session of ``leg`` joins its two far parties together and leaves both calls."""
    first = sw.require(leg, "initiate-call-transfer", CONNECTED)
    target = next((t for t in sw.legs_of(leg.session) if t.id == target_id), None)
    if target is None or target is leg:
        raise CallStateError("initiate-call-transfer (no such second call)", first.state)
    second = sw.require(target, "initiate-call-transfer", CONNECTED)
    a, b = first.other(leg), second.other(target)
    leg.publish(ev.TransferInitiated(target_call_id=target_id))
    for call in (first, second):
        if call.bridge is not None:
            call.bridge.unbridge()
            call.bridge = None
    joined = SwitchCall(sw.new_id(), a.uri, b.uri, CallPhase.CONNECTED, caller=a, callee=b)
    joined.started_at = joined.answered_at = sw.clock.time()
    a.call = b.call = joined
    a.set_state(PartyState.ACTIVE)  # off hold: each hears its new far party
    b.set_state(PartyState.ACTIVE)
    sw.calls[joined.id] = joined
    sw.on_call_changed(joined)
    sw.apply_media(joined)
    a.publish(ev.SessionModified(reason="transferred", from_uri=b.uri))
    b.publish(ev.SessionModified(reason="transferred", from_uri=a.uri))
    leg.publish(ev.TransferTerminated(reason="success", target_call_id=target_id))
    for call, own in ((first, leg), (second, target)):
        call.caller = call.callee = None
        await sw.finish(call, Reason.TRANSFERRED)
        await sw.drop(own, Reason.TRANSFERRED)


async def move(sw: Switch, leg: CallLeg) -> None:
    """Ring the user's other sessions; the call moves to the one that answers."""
    call = sw.require(leg, "initiate-call-move", CONNECTED)
    targets = [s for s in sw.sessions.of_user(leg.session.user_id) if s.id != leg.session.id]
    if not targets:
        leg.publish(ev.MoveTerminated(reason="No other session of this user"))
        return
    call.set_state(CallPhase.MOVING)
    call.mover = leg
    peer = call.other(leg).uri
    for target in targets:
        sw.tasks.spawn(ringing.ring(sw, call, target, peer))
