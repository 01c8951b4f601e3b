"""Answering and connecting: a ringing session's answer applied (the others are told it was
answered elsewhere), both legs' media awaited, the parties bridged; who hears whom (the
bridge, or music or silence while one holds); a party whose peer is gone ends its call."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ivrbot.core import events as ev
from ivrbot.core.bridge import Bridge
from ivrbot.core.call_state import (
    MEDIA_TIMEOUT_S,
    TALKING,
    CallPhase,
    CallStateError,
    PartyState,
    Reason,
)
from ivrbot.core.endpoints import media_up
from ivrbot.core.switch_call import CallLeg, SwitchCall
from ivrbot.media.tones import hold_music

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch

log = logging.getLogger("ivrbot.core.switch")


async def answer(sw: Switch, callee: CallLeg, sdp: str) -> None:
    call = callee.call
    moving, mover = call.state is CallPhase.MOVING, call.mover
    if callee not in call.ringing or call.state not in (CallPhase.RINGING, CallPhase.MOVING):
        raise CallStateError("call-answer (another session answered first)", call.state)
    # claimed before any await: a second answer is refused
    call.set_state(CallPhase.MOVE_CONNECTING if moving else CallPhase.ANSWERING)
    claimed = call.state
    try:
        await callee.leg.accept_answer(sdp)
    except BaseException:
        if call.state is claimed:  # not applied: the call rings on
            call.set_state(CallPhase.MOVING if moving else CallPhase.RINGING)
        raise
    if call.state is not claimed or callee not in call.ringing:  # ended (or it hung up) meanwhile
        if call.state is claimed:
            call.set_state(CallPhase.MOVING if moving else CallPhase.RINGING)
            sw.maybe_nobody_answers(call)
            if mover is not None and not call.ringing and not call.pending_rings:
                mover.publish(ev.MoveTerminated(reason=Reason.HANGUP))
                call.set_state(CallPhase.CONNECTED)
        raise CallStateError("call-answer (the call ended meanwhile)", call.state)
    call.ringing.remove(callee)
    callee.set_state(PartyState.ACTIVE)
    sw.release(callee.session)
    if mover is None:
        call.callee = callee
        call.set_state(CallPhase.CONNECTING)
    for other in list(call.ringing):
        await sw.drop(other, Reason.ANSWERED_ELSEWHERE)
    if mover is not None:
        sw.tasks.spawn(_complete_move(sw, call, mover, callee))
        return
    if call.state is not CallPhase.CONNECTING:
        return  # ended while the others were told
    assert call.caller is not None
    call.caller.stop_tone()
    if call.caller.answer_sdp is not None:  # no early media: the answer goes out now
        call.caller.publish(ev.SessionOpen(sdp=call.caller.answer_sdp))
        call.caller.answer_sdp = None
    sw.tasks.spawn(_connect(sw, call))


async def _connect(sw: Switch, call: SwitchCall) -> None:
    assert call.caller and call.callee
    results = await asyncio.gather(
        media_up(call.caller.leg, MEDIA_TIMEOUT_S, sw.clock),
        media_up(call.callee.leg, MEDIA_TIMEOUT_S, sw.clock),
    )
    if call.state is not CallPhase.CONNECTING:
        return
    if not all(results):
        await sw.end(call.caller, Reason.MEDIA_FAILED, by_gateway=True)
        return
    call.answered_at = sw.clock.time()
    call.set_state(CallPhase.CONNECTED)
    sw.on_call_changed(call)
    sw.tasks.spawn(watch(sw, call.caller))
    sw.tasks.spawn(watch(sw, call.callee))
    apply_media(sw, call)
    # both are told once they hear each other; the caller's answer went out already
    # (session-open + provisionalSDP, or session-open when the callee answered)
    if sw.early_media:
        call.caller.publish(ev.SessionModified())
    call.callee.publish(ev.SessionOpen())


async def _complete_move(sw: Switch, call: SwitchCall, old: CallLeg, new: CallLeg) -> None:
    """A move's target answered: once its media is up it takes the mover's (``old``) place."""
    ok = await media_up(new.leg, MEDIA_TIMEOUT_S, sw.clock)
    if new.held:  # it takes the call over as it was: not held
        new.set_state(PartyState.ACTIVE)
    if call.state is CallPhase.MOVE_CONNECTING:
        call.set_state(CallPhase.CONNECTED)  # moved, or not: the call goes on
    if not ok or call.state is not CallPhase.CONNECTED:
        await sw.drop(new, Reason.MEDIA_FAILED)
        old.publish(ev.MoveTerminated(reason="failed"))
        return
    call.replace(old, new)
    sw.on_call_changed(call)
    sw.tasks.spawn(watch(sw, new))
    apply_media(sw, call)
    new.publish(ev.SessionOpen())
    old.publish(ev.MoveTerminated(reason="moved"))
    await sw.drop(old, Reason.MOVED)


async def watch(sw: Switch, party: CallLeg) -> None:
    """A party whose peer is gone (its leg failed, not closed by the gateway) ends its
    call (whichever call it is in by then: a transfer joins it to another)."""
    await party.leg.failed.wait()
    call = party.call
    if party.leg.closed or call.state is CallPhase.ENDED or party not in call.legs():
        return
    log.info("call %s: %s is gone: ending the call", call.id, party.uri)
    await sw.end(party, Reason.LOST, by_gateway=True)


# who hears whom -----------------------------------------------------------------------------
def apply_media(sw: Switch, call: SwitchCall) -> None:
    """Bridge the two parties, or, while one holds, give the other music or silence:
    its session's ``hold_audio`` when it said (a bot says silence: music on hold is not
    the caller, and a recogniser would take it for words), else the switch's. A party
    whose session said is also told when its far end holds and resumes."""
    if call.bridge is not None:
        call.bridge.unbridge()
        call.bridge = None
    parties = [p for p in (call.caller, call.callee) if p is not None]
    for party in parties:
        party.stop_tone()
    if call.state is CallPhase.MERGED:  # the conference's mixer carries their audio
        return
    if call.state not in TALKING or len(parties) != 2:
        return
    a, b = parties
    for me, other in ((a, b), (b, a)):
        _tell_far_hold(me, other.held)
    if not a.held and not b.held:
        call.bridge = Bridge(a.leg, b.leg)
        return
    for me, other in ((a, b), (b, a)):
        hears = me.session.hold_audio or sw.hold_audio
        if other.held and not me.held and hears == "music":
            me.play_tone(hold_music())


def _tell_far_hold(party: CallLeg, far_held: bool) -> None:
    """``session-modified`` with reason ``held`` / ``resumed`` when the far end's hold
    changed, to a session that declared its hold audio (ivrbot's own: a bot stops
    listening and its input timers pause)."""
    if party.session.hold_audio is None or party.told_far_held == far_held:
        return
    party.told_far_held = far_held
    party.publish(ev.SessionModified(reason="held" if far_held else "resumed"))
