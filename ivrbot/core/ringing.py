"""Placing a call and ringing: the caller's offer answered (early media: ringback), the
called identity's sessions rung (one pending call per session: the others wait), an
in-process bot's admission, busy when nobody can ring, "No answer" after the ring timeout."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivrbot.core import events as ev
from ivrbot.core.call_state import RINGS, CallPhase, PartyState, Reason
from ivrbot.core.sessions import Session
from ivrbot.core.switch_call import Acceptor, CallLeg, SwitchCall
from ivrbot.media.tones import ringback
from ivrbot.numbers import identity_candidates, identity_uri

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch

log = logging.getLogger("ivrbot.core.switch")

# a call still takes new rings: ringing its callee, or moving to another session of its user
TAKES_RINGS = frozenset({CallPhase.RINGING, CallPhase.ANSWERING, CallPhase.MOVING})


def targets(sw: Switch, uri: str, exclude: Session) -> list[Session]:
    found = [s for uid in identity_candidates(uri) for s in sw.sessions.of_user(uid)]
    return [s for s in found if s.id != exclude.id]


async def place(sw: Switch, session: Session, called_party: str, sdp: str) -> CallLeg:
    call = SwitchCall(sw.new_id(), identity_uri(session.user_id), called_party)
    call.started_at = sw.clock.time()
    leg = sw.endpoints.for_session(f"{session.user_id}/{call.id}", session)
    caller = CallLeg(sw.new_id(), session, leg, "caller", call, sw)
    answer = await leg.answer_offer(sdp)
    call.caller = caller
    session.calls[caller.id] = caller
    sw.calls[call.id] = call
    sw.on_call_changed(call)
    acceptor = next(
        (a for uid in identity_candidates(called_party) if (a := sw.acceptors.get(uid))),
        None,
    )
    rung = [] if acceptor is not None else targets(sw, called_party, session)
    if acceptor is None and not rung:
        acceptor = sw.route_out(called_party)
    if acceptor is None and not rung:
        sw.tasks.spawn(sw.end(caller, Reason.NOT_FOUND, by_gateway=True))
        return caller
    if sw.early_media:
        caller.publish(ev.SessionOpen(sdp=answer, provisional=True))
        caller.play_tone(ringback())
    else:
        caller.answer_sdp = answer  # session-open with it when the callee answers
    for target in rung:
        sw.tasks.spawn(ring(sw, call, target, call.from_uri))
    if acceptor is not None:
        sw.tasks.spawn(admit(sw, call, acceptor))
    call.ring_timer = sw.tasks.spawn(no_answer(sw, call))
    return caller


async def admit(sw: Switch, call: SwitchCall, acceptor: Acceptor) -> None:
    """An in-process bot takes the call: it names the session to ring (the caller hears
    ringback meanwhile, queued if the bot is at its limit), or the caller hears busy."""
    call.pending_rings += 1  # still ringing while the bot decides
    try:
        session = await acceptor.admit(call)
    except Exception:
        log.exception("call %s: the bot could not take it", call.id)
        session = None
    finally:
        call.pending_rings -= 1
    if session is not None and call.state in TAKES_RINGS:
        await ring(sw, call, session, call.from_uri)
    rung = session is not None and (
        any(leg.session is session for leg in call.legs())
        or any(waiting is call for waiting, _ in session.waiting)
    )
    if session is not None and not rung:
        acceptor.released(session)
    maybe_nobody_answers(sw, call)  # turned away (or the bot's session was gone): busy


async def no_answer(sw: Switch, call: SwitchCall) -> None:
    await sw.clock.sleep(sw.ring_timeout_s)
    if call.state in RINGS and call.caller is not None:
        await sw.end(call.caller, Reason.NO_ANSWER, by_gateway=True)


def has_pending(sw: Switch, session: Session) -> bool:
    """The session is being offered a call, or one rings it (it holds one at a time)."""
    return session.offering > 0 or any(
        leg.session is session for call in sw.calls.values() for leg in call.ringing
    )


async def ring(sw: Switch, call: SwitchCall, target: Session, from_uri: str) -> None:
    if has_pending(sw, target):
        call.pending_rings += 1
        target.waiting.append((call, from_uri))
        return
    leg = sw.endpoints.for_session(f"{target.user_id}/{call.id}", target)
    callee = CallLeg(sw.new_id(), target, leg, "callee", call, sw, PartyState.RINGING)
    call.pending_rings += 1  # until the offer is made: the call is still ringing here
    target.offering += 1
    try:
        offer = await leg.make_offer()
    finally:
        call.pending_rings -= 1
        target.offering -= 1
    if call.state not in TAKES_RINGS:
        await leg.close()
        release(sw, target)
        return
    call.ringing.append(callee)
    target.calls[callee.id] = callee
    callee.publish(ev.InvitationReceived(from_uri=from_uri, to_uri=call.to_uri, sdp=offer))


def release(sw: Switch, session: Session) -> None:
    """The session's pending call is settled: ring it with the next call waiting for it."""
    while session.waiting and not has_pending(sw, session):
        call, from_uri = session.waiting.pop(0)
        call.pending_rings -= 1
        if call.state in TAKES_RINGS:
            sw.tasks.spawn(ring(sw, call, session, from_uri))
            return
        maybe_nobody_answers(sw, call)


def maybe_nobody_answers(sw: Switch, call: SwitchCall) -> None:
    if call.state is CallPhase.RINGING and not call.ringing and not call.pending_rings:
        if call.caller is not None:
            sw.tasks.spawn(sw.end(call.caller, Reason.BUSY, by_gateway=True))
