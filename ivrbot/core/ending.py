"""Ending: a party hangs up, cancels or rejects (a ringing session's reject leaves the others
ringing), the gateway ends a call, a merged call's parties leave one by one, a session logs
out, the switch closes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivrbot.core import events as ev
from ivrbot.core.call_state import CallPhase, PartyState, Reason
from ivrbot.core.sessions import Session
from ivrbot.core.switch_call import CallLeg, SwitchCall

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch


async def end(sw: Switch, leg: CallLeg, reason: str, by_gateway: bool) -> None:
    call = leg.call
    if call.state is CallPhase.ENDED:
        return
    if call.state is CallPhase.MERGED:  # each party of a merged call leaves on its own
        await part(sw, leg, reason, notify=by_gateway)
        return
    if leg in call.ringing:
        # one ringing session rejects: the others keep ringing unless it was the last
        await drop(sw, leg, None)
        if call.state is CallPhase.MOVING and not call.ringing and not call.pending_rings:
            assert call.mover is not None
            call.mover.publish(ev.MoveTerminated(reason=reason))
            call.set_state(CallPhase.CONNECTED)  # nobody took it: it stays where it was
        if call.ringing or call.pending_rings or call.state is not CallPhase.RINGING:
            return
    for other in call.legs():
        notify = by_gateway or other is not leg
        await drop(sw, other, reason if notify else None)  # None: the one who ended it
    call.ended_by = "" if by_gateway else leg.side
    await finish(sw, call, reason)


async def part(sw: Switch, leg: CallLeg, reason: str, notify: bool) -> None:
    """One party of a merged call leaves it (and its conference); the last ends the call."""
    call = leg.call
    if call.caller is leg:
        call.caller = None
    elif call.callee is leg:
        call.callee = None
    else:
        return
    membership, leg.membership = leg.membership, None
    if membership is not None:
        await membership.leave(reason)
    await drop(sw, leg, reason if notify else None)
    if call.caller is None and call.callee is None:
        call.ended_by = leg.side if not notify else ""
        await finish(sw, call, reason)


async def finish(sw: Switch, call: SwitchCall, reason: str) -> None:
    if call.bridge:
        call.bridge.unbridge()
        call.bridge = None
    call.set_state(CallPhase.ENDED)  # the ring timer goes with the ringing
    call.ended_at = sw.clock.time()
    call.reason = reason
    sw.calls.pop(call.id, None)
    sw.on_call_changed(call)


async def drop(sw: Switch, leg: CallLeg, reason: str | None) -> None:
    """``leg`` is out: ``session-terminated`` (no reason: its own hang-up / reject)."""
    leg.publish(ev.SessionTerminated(reason=reason))
    leg.set_state(PartyState.ENDED)
    leg.stop_tone()
    leg.session.calls.pop(leg.id, None)
    if leg in leg.call.ringing:
        leg.call.ringing.remove(leg)
        sw.release(leg.session)
    await leg.leg.close()


async def end_session(sw: Switch, session: Session) -> None:
    waiting, session.waiting = session.waiting, []
    for call, _ in waiting:
        call.pending_rings -= 1
        sw.maybe_nobody_answers(call)
    for leg in sw.legs_of(session):
        await end(sw, leg, Reason.LOGGED_OUT, by_gateway=False)


async def close(sw: Switch) -> None:
    for call in list(sw.calls.values()):
        for leg in [p for p in (call.caller, call.callee) if p is not None]:
            await end(sw, leg, Reason.HANGUP, by_gateway=True)
    sw.tasks.cancel_all()
