"""Hold, resume and media modifications (the gateway carries audio; each leg renegotiates
with it), and what each action on a connected call requires of the call's phase."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivrbot.core import events as ev
from ivrbot.core.call_state import TALKING, CallPhase, CallStateError, PartyState
from ivrbot.core.switch_call import CallLeg, PendingMod, SwitchCall

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch

ON_HOLD = TALKING | {CallPhase.MERGED}  # hold and resume: a merged party leaves the mix
BUSY = {  # why an action that needs a plain connected call is refused now
    CallPhase.MERGED: "the call is in a conference",
    CallPhase.MODIFYING: "a media modification is pending",
    CallPhase.MOVING: "a move is in progress",
    CallPhase.MOVE_CONNECTING: "a move is in progress",
}


def require(leg: CallLeg, action: str, phases: frozenset[CallPhase]) -> SwitchCall:
    """``leg``'s call, if its phase is one of ``phases`` and ``leg`` is still in it;
    else CallStateError naming ``action`` (and why, when the call is busy)."""
    call = leg.call
    if leg.state is PartyState.RINGING:  # a move's target, not answered yet
        raise CallStateError(f"{action} (not answered)", call.state)
    if call.state not in phases and call.state in BUSY:
        raise CallStateError(f"{action} ({BUSY[call.state]})", call.state)
    if call.state not in phases or leg.session.calls.get(leg.id) is not leg:
        raise CallStateError(action, call.state)
    return call


async def hold(sw: Switch, leg: CallLeg, sdp: str | None) -> str:
    """``leg`` holds; ``sdp`` is its new offer (``a=sendonly``), answered ``a=recvonly``
    in ``mod-terminated`` (reason ``success``) with the returned modId."""
    call = require(leg, "initiate-call-hold", ON_HOLD)
    answer = await leg.leg.renegotiate(sdp) if sdp is not None else None
    if leg.membership is not None:  # out of the conference's mix; the others carry on
        leg.membership.hold()
    if leg.state is not PartyState.ENDED:  # (dropped meanwhile: nothing to hold)
        leg.set_state(PartyState.HELD)
    sw.apply_media(call)
    return _mod_done(sw, leg, answer)


async def resume(sw: Switch, leg: CallLeg, sdp: str | None) -> str:
    """As :func:`hold`, back in the call (offer and answer ``a=sendrecv``)."""
    call = require(leg, "initiate-call-resume", ON_HOLD)
    answer = await leg.leg.renegotiate(sdp) if sdp is not None else None
    if leg.membership is not None:
        leg.membership.resume()
    if leg.state is not PartyState.ENDED:
        leg.set_state(PartyState.ACTIVE)
    sw.apply_media(call)
    return _mod_done(sw, leg, answer)


def _mod_done(sw: Switch, leg: CallLeg, answer: str | None) -> str:
    mod_id = sw.new_id()
    leg.publish(ev.ModTerminated(mod_id=mod_id, reason="success", sdp=answer))
    return mod_id


async def modify(sw: Switch, leg: CallLeg, media_type: str, sdp: str | None) -> str:
    """``leg`` upgrades or downgrades: its offer ``sdp`` is answered now and the answer
    goes out in its ``mod-terminated`` once the far end settles; the far end gets
    ``mod-received`` with the gateway's new offer on its own leg."""
    call = require(leg, "initiate-call-mod", frozenset({CallPhase.CONNECTED}))
    other = call.other(leg)
    mod_id = sw.new_id()
    call.set_state(CallPhase.MODIFYING)
    call.mod = PendingMod(mod_id, leg, media_type)
    try:
        leg.answer_sdp = await leg.leg.renegotiate(sdp) if sdp is not None else None
        offer = await other.leg.reoffer()
    except BaseException:
        if call.state is CallPhase.MODIFYING:
            call.set_state(CallPhase.CONNECTED)
        raise
    other.publish(ev.ModReceived(mod_id=mod_id, media_type=media_type, sdp=offer))
    return mod_id


async def settle_mod(
    sw: Switch, leg: CallLeg, mod_id: str, accepted: bool, sdp: str | None
) -> None:
    """The far end accepts or rejects; ``sdp`` is its answer to ``mod-received``'s offer."""
    call = leg.call
    pending = call.mod
    if pending is None or pending.mod_id != mod_id or pending.initiator is leg:
        raise CallStateError(f"modification {mod_id}", call.state)
    if sdp is not None:
        await leg.leg.accept_answer(sdp)
    if call.state is CallPhase.MODIFYING:
        call.set_state(CallPhase.CONNECTED)
    initiator = pending.initiator
    if accepted:
        call.media_type = pending.media_type
    reason = "success" if accepted else "rejected"
    answer, initiator.answer_sdp = initiator.answer_sdp, None
    initiator.publish(
        ev.ModTerminated(mod_id=mod_id, reason=reason, media_type=call.media_type, sdp=answer)
    )
    leg.publish(ev.ModTerminated(mod_id=mod_id, reason=reason, media_type=call.media_type))
