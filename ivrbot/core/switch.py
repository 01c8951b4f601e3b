"""The call switch (a back-to-back user agent): places calls, rings, answers, bridges, ends.

Every endpoint talks only to the gateway: the caller's leg and each ringing callee's leg
are separate peer connections, and the gateway bridges the caller's leg with the leg that
answers. Endpoints never negotiate with each other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.core import events as ev
from ivrbot.core.bridge import Bridge
from ivrbot.core.call_state import (
    CALL_CHANGES,
    MEDIA_TIMEOUT_S,
    CallPhase,
    CallStateError,
    Reason,
    change,
)
from ivrbot.core.endpoints import Endpoint, EndpointKinds, media_up
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.media.tones import hold_music, ringback
from ivrbot.media.tracks import Playback
from ivrbot.numbers import identity_candidates, identity_uri
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)


class Acceptor(Protocol):
    """A bot in the gateway's process that takes the calls of an identity (instead of the
    sessions of that identity being rung): it picks the session to ring, or turns the call
    away (None) when it has no room within its queue time."""

    async def admit(self, call: SwitchCall) -> Session | None: ...

    def released(self, session: Session) -> None:
        """The session admitted for a call was not rung after all (the call ended first)."""


class Membership(Protocol):
    """A call party's place in the conference its call was merged into (core/merge.py)."""

    def hold(self) -> None: ...

    def resume(self) -> None: ...

    async def leave(self, reason: str) -> None: ...


# what a transfer handed to the far end came to: outcome ('transferred' | 'busy' | 'rejected'
# | 'no-answer' | 'failed'), reason, and the progress reported on the way ('180 Ringing', ...)
HandOff = tuple[str, str, tuple[str, ...]]


@dataclass(eq=False)
class CallLeg:
    """One session's view of a call: its call id, its media leg, its side."""

    id: str
    session: Session
    leg: Endpoint
    side: str  # 'caller' | 'callee'
    call: SwitchCall

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/calls/{self.id}"

    held: bool = False  # this side put the call on hold
    answer_sdp: str | None = None  # the answer to this side's offer, until it goes out
    tone: Playback | None = None  # ringback or music on hold playing to this side
    membership: Membership | None = None  # in a conference's mix (a merged call)
    told_far_held: bool = False  # this side was told its far end holds (session-modified)

    def publish(self, payload: ev.EventPayload) -> None:
        self.session.channel.publish(
            ev.SessionEvent(ev.Resource(ev.Topic.CALL, self.resource_url), payload)
        )

    def play_tone(self, pcm: np.ndarray) -> None:
        self.stop_tone()
        self.tone = self.leg.out.play(pcm, loop=True)

    def stop_tone(self) -> None:
        if self.tone is not None:
            self.tone.stop()
            self.tone = None

    @property
    def uri(self) -> str:
        return identity_uri(self.session.user_id)


@dataclass(eq=False)
class SwitchCall:
    id: str
    from_uri: str
    to_uri: str
    state: CallPhase = CallPhase.RINGING
    caller: CallLeg | None = None
    ringing: list[CallLeg] = field(default_factory=list)  # callee sessions, or move targets
    callee: CallLeg | None = None
    moving: CallLeg | None = None  # the leg whose user is moving the call to another session
    answering: CallLeg | None = None  # the ringing leg whose answer is being applied
    pending_rings: int = 0  # sessions about to ring (their offer is being made)
    media_type: str = "audio"
    pending_mod: tuple[str, CallLeg, str] | None = None  # (modId, initiator, new media type)
    bridge: Bridge | None = None
    started_at: float = 0.0  # the switch's clock.time() when placed
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    ended_by: str = ""  # the side that ended it: 'caller' | 'callee' | '' (the gateway)
    ring_timer: asyncio.Task[None] | None = None  # ends it "No answer"; cancelled once settled

    def set_state(self, new: CallPhase) -> None:
        """The one place the call's state changes (checked against CALL_CHANGES, logged)."""
        if change(f"call {self.id}", self.state, new, CALL_CHANGES):
            self.state = new

    def legs(self) -> list[CallLeg]:
        out = [self.caller] if self.caller else []
        return out + ([self.callee] if self.callee else []) + self.ringing

    def other(self, leg: CallLeg) -> CallLeg:
        """The far party of ``leg`` in a connected call."""
        other = self.callee if leg is self.caller else self.caller
        if other is None:
            raise CallStateError("this operation", self.state)
        return other

    def replace(self, old: CallLeg, new: CallLeg) -> None:
        if self.caller is old:
            self.caller = new
        else:
            self.callee = new
        new.call = self


class Switch:
    """Places, rings, answers, bridges, holds, transfers, moves and ends two-party calls."""

    def __init__(
        self,
        sessions: SessionRegistry,
        endpoints: EndpointKinds,
        hold_audio: str = "music",
        ring_timeout_s: float = 60.0,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.sessions, self.endpoints = sessions, endpoints
        self.clock = clock  # the ring and media timeouts run on it; records' times come from it
        self.ring_timeout_s = ring_timeout_s  # unanswered calls end with "No answer"
        self.hold_audio = hold_audio  # 'music' or 'silence' for the party left on hold
        # early media: the caller gets the answer at once (session-open, provisionalSDP) and
        # hears ringback; without it the answer goes out when the callee answers
        self.early_media = True
        self.calls: dict[str, SwitchCall] = {}
        # told when a call starts, is answered, changes parties and ends (the call record)
        self.on_call_changed: Callable[[SwitchCall], None] = lambda call: None
        self.acceptors: dict[str, Acceptor] = {}  # identity -> the in-process bot taking its calls
        # who takes calls to numbers nobody here answers (the SIP connector's trunks), if anyone
        self.route_out: Callable[[str], Acceptor | None] = lambda called_party: None
        # a blind transfer handed to the far end (the SIP connector's REFER), if it takes it:
        # (leg of the transferring party, target) -> awaitable (outcome, reason, progress)
        self.transfer_out: Callable[[CallLeg, str], Awaitable[HandOff] | None] = (
            lambda leg, target: None
        )
        self._tasks = TaskSet("switch")

    @staticmethod
    def _new_id() -> str:
        return secrets.token_hex(6)

    def _targets(self, uri: str, exclude: Session) -> list[Session]:
        found = [s for uid in identity_candidates(uri) for s in self.sessions.of_user(uid)]
        return [s for s in found if s.id != exclude.id]

    # placing and answering ----------------------------------------------------------------
    async def place(self, session: Session, called_party: str, sdp: str) -> CallLeg:
        """Take the caller's offer, give early media (ringback), ring the called identity."""
        call = SwitchCall(self._new_id(), identity_uri(session.user_id), called_party)
        call.started_at = self.clock.time()
        leg = self.endpoints.for_offer(f"{session.user_id}/{call.id}", session)
        caller = CallLeg(self._new_id(), session, leg, "caller", call)
        answer = await leg.answer_offer(sdp)
        call.caller = caller
        session.legs[caller.id] = caller
        self.calls[call.id] = call
        self.on_call_changed(call)
        acceptor = next(
            (a for uid in identity_candidates(called_party) if (a := self.acceptors.get(uid))),
            None,
        )
        targets = [] if acceptor is not None else self._targets(called_party, session)
        if acceptor is None and not targets:
            acceptor = self.route_out(called_party)
        if acceptor is None and not targets:
            self._tasks.spawn(self.end(caller, Reason.NOT_FOUND, by_gateway=True))
            return caller
        if self.early_media:
            caller.publish(ev.SessionOpen(sdp=answer, provisional=True))
            caller.play_tone(ringback())
        else:
            caller.answer_sdp = answer  # session-open with it when the callee answers
        for target in targets:
            self._tasks.spawn(self._ring(call, target, call.from_uri))
        if acceptor is not None:
            self._tasks.spawn(self._admit(call, acceptor))
        call.ring_timer = self._tasks.spawn(self._no_answer(call))
        return caller

    async def _admit(self, call: SwitchCall, acceptor: Acceptor) -> None:
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
        if session is not None and self._still_rings(call):
            await self._ring(call, session, call.from_uri)
        rung = session is not None and (
            any(leg.session is session for leg in call.legs())
            or any(waiting is call for waiting, _ in session.waiting)
        )
        if session is not None and not rung:
            acceptor.released(session)
        self._maybe_nobody_answers(call)  # turned away (or the bot's session was gone): busy

    async def _no_answer(self, call: SwitchCall) -> None:
        await self.clock.sleep(self.ring_timeout_s)
        if call.state is CallPhase.RINGING and call.caller is not None:
            await self.end(call.caller, Reason.NO_ANSWER, by_gateway=True)

    @staticmethod
    def _has_pending(session: Session) -> bool:
        return session.offering > 0 or any(leg in leg.call.ringing for leg in session.legs.values())

    def _still_rings(self, call: SwitchCall) -> bool:
        return call.state is CallPhase.RINGING or (
            call.moving is not None and call.state is not CallPhase.ENDED
        )

    async def _ring(self, call: SwitchCall, target: Session, from_uri: str) -> None:
        if self._has_pending(target):
            call.pending_rings += 1
            target.waiting.append((call, from_uri))
            return
        leg = self.endpoints.for_session(f"{target.user_id}/{call.id}", target)
        callee = CallLeg(self._new_id(), target, leg, "callee", call)
        call.pending_rings += 1  # until the offer is made: the call is still ringing here
        target.offering += 1
        try:
            offer = await leg.make_offer()
        finally:
            call.pending_rings -= 1
            target.offering -= 1
        if not self._still_rings(call):
            await leg.close()
            self._release(target)
            return
        call.ringing.append(callee)
        target.legs[callee.id] = callee
        callee.publish(ev.InvitationReceived(from_uri=from_uri, to_uri=call.to_uri, sdp=offer))

    def _release(self, session: Session) -> None:
        """The session's pending call is settled: ring it with the next call waiting for it."""
        while session.waiting and not self._has_pending(session):
            call, from_uri = session.waiting.pop(0)
            call.pending_rings -= 1
            if self._still_rings(call):
                self._tasks.spawn(self._ring(call, session, from_uri))
                return
            self._maybe_nobody_answers(call)

    def _maybe_nobody_answers(self, call: SwitchCall) -> None:
        if call.state is CallPhase.RINGING and not call.ringing and not call.pending_rings:
            if call.caller is not None:
                self._tasks.spawn(self.end(call.caller, Reason.BUSY, by_gateway=True))

    async def answer(self, callee: CallLeg, sdp: str) -> None:
        """A ringing session answers: the call (or a call being moved) is bridged to it."""
        call = callee.call
        if callee not in call.ringing or call.answering is not None:
            raise CallStateError("call-answer (another session answered first)", call.state)
        call.answering = callee  # claimed before any await: a second answer is refused
        try:
            await callee.leg.accept_answer(sdp)
        finally:
            call.answering = None
        call.ringing.remove(callee)
        self._release(callee.session)
        for other in list(call.ringing):
            await self._drop(other, Reason.ANSWERED_ELSEWHERE)
        if call.moving is not None:
            self._tasks.spawn(self._complete_move(call, callee))
            return
        call.callee = callee
        call.set_state(CallPhase.CONNECTING)
        assert call.caller is not None
        call.caller.stop_tone()
        if call.caller.answer_sdp is not None:  # no early media: the answer goes out now
            call.caller.publish(ev.SessionOpen(sdp=call.caller.answer_sdp))
            call.caller.answer_sdp = None
        self._tasks.spawn(self._connect(call))

    async def _connect(self, call: SwitchCall) -> None:
        assert call.caller and call.callee
        results = await asyncio.gather(
            media_up(call.caller.leg, MEDIA_TIMEOUT_S, self.clock),
            media_up(call.callee.leg, MEDIA_TIMEOUT_S, self.clock),
        )
        if call.state is not CallPhase.CONNECTING:
            return
        if not all(results):
            await self.end(call.caller, Reason.MEDIA_FAILED, by_gateway=True)
            return
        call.answered_at = self.clock.time()
        call.set_state(CallPhase.CONNECTED)
        self.on_call_changed(call)
        self._tasks.spawn(self._watch(call.caller))
        self._tasks.spawn(self._watch(call.callee))
        self.apply_media(call)
        # both are told once they hear each other; the caller's answer went out already
        # (session-open + provisionalSDP, or session-open when the callee answered)
        if self.early_media:
            call.caller.publish(ev.SessionModified())
        call.callee.publish(ev.SessionOpen())

    async def _watch(self, party: CallLeg) -> None:
        """A party whose peer is gone (its leg failed, not closed by the gateway) ends its
        call (whichever call it is in by then: a transfer joins it to another)."""
        await party.leg.failed.wait()
        call = party.call
        if party.leg.closed or call.state is CallPhase.ENDED or party not in call.legs():
            return
        log.info("call %s: %s is gone: ending the call", call.id, party.uri)
        await self.end(party, Reason.LOST, by_gateway=True)

    # who hears whom -------------------------------------------------------------------------
    def apply_media(self, call: SwitchCall) -> None:
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
        if call.state is not CallPhase.CONNECTED or len(parties) != 2:
            return
        a, b = parties
        for me, other in ((a, b), (b, a)):
            self._tell_far_hold(me, other.held)
        if not a.held and not b.held:
            call.bridge = Bridge(a.leg, b.leg)
            return
        for me, other in ((a, b), (b, a)):
            hears = me.session.hold_audio or self.hold_audio
            if other.held and not me.held and hears == "music":
                me.play_tone(hold_music())

    @staticmethod
    def _tell_far_hold(party: CallLeg, far_held: bool) -> None:
        """``session-modified`` with reason ``held`` / ``resumed`` when the far end's hold
        changed, to a session that declared its hold audio (ivrbot's own: a bot stops
        listening and its input timers pause)."""
        if party.session.hold_audio is None or party.told_far_held == far_held:
            return
        party.told_far_held = far_held
        party.publish(ev.SessionModified(reason="held" if far_held else "resumed"))

    def require_connected(self, leg: CallLeg, action: str, merged_ok: bool = False) -> SwitchCall:
        call = leg.call
        if call.state is CallPhase.MERGED and not merged_ok:
            raise CallStateError(f"{action} (the call is in a conference)", call.state)
        live = call.state in (CallPhase.CONNECTED, CallPhase.MERGED)
        if not live or leg.session.legs.get(leg.id) is not leg:
            raise CallStateError(action, call.state)
        return call

    async def hold(self, leg: CallLeg, sdp: str | None = None) -> str:
        """``leg`` holds; ``sdp`` is its new offer (``a=sendonly``), answered ``a=recvonly``
        in ``mod-terminated`` (reason ``success``) with the returned modId."""
        call = self.require_connected(leg, "initiate-call-hold", merged_ok=True)
        answer = await leg.leg.renegotiate(sdp) if sdp is not None else None
        if leg.membership is not None:  # out of the conference's mix; the others carry on
            leg.membership.hold()
        leg.held = True
        self.apply_media(call)
        return self._mod_done(leg, answer)

    async def resume(self, leg: CallLeg, sdp: str | None = None) -> str:
        """As :meth:`hold`, back in the call (offer and answer ``a=sendrecv``)."""
        call = self.require_connected(leg, "initiate-call-resume", merged_ok=True)
        answer = await leg.leg.renegotiate(sdp) if sdp is not None else None
        if leg.membership is not None:
            leg.membership.resume()
        leg.held = False
        self.apply_media(call)
        return self._mod_done(leg, answer)

    def _mod_done(self, leg: CallLeg, answer: str | None) -> str:
        mod_id = self._new_id()
        leg.publish(ev.ModTerminated(mod_id=mod_id, reason="success", sdp=answer))
        return mod_id

    # transfer and move -----------------------------------------------------------------------
    async def transfer(self, leg: CallLeg, target_id: str) -> None:
        """The session of ``leg`` joins its two far parties together and leaves both calls."""
        first = self.require_connected(leg, "initiate-call-transfer")
        target = leg.session.legs.get(target_id)
        if target is None or target is leg:
            raise CallStateError("initiate-call-transfer (no such second call)", first.state)
        second = self.require_connected(target, "initiate-call-transfer")
        a, b = first.other(leg), second.other(target)
        leg.publish(ev.TransferInitiated(target_call_id=target_id))
        for call in (first, second):
            if call.bridge is not None:
                call.bridge.unbridge()
                call.bridge = None
        joined = SwitchCall(self._new_id(), a.uri, b.uri, CallPhase.CONNECTED, caller=a, callee=b)
        joined.started_at = joined.answered_at = self.clock.time()
        a.call = b.call = joined
        a.held = b.held = False
        self.calls[joined.id] = joined
        self.on_call_changed(joined)
        self.apply_media(joined)
        a.publish(ev.SessionModified(reason="transferred", from_uri=b.uri))
        b.publish(ev.SessionModified(reason="transferred", from_uri=a.uri))
        leg.publish(ev.TransferTerminated(reason="success", target_call_id=target_id))
        for call, own in ((first, leg), (second, target)):
            call.caller = call.callee = None
            await self._finish(call, Reason.TRANSFERRED)
            await self._drop(own, Reason.TRANSFERRED)

    async def move(self, leg: CallLeg) -> None:
        """Ring the user's other sessions; the call moves to the one that answers."""
        call = self.require_connected(leg, "initiate-call-move")
        if call.moving is not None:
            raise CallStateError("initiate-call-move (a move is in progress)", call.state)
        targets = [s for s in self.sessions.of_user(leg.session.user_id) if s.id != leg.session.id]
        if not targets:
            leg.publish(ev.MoveTerminated(reason="No other session of this user"))
            return
        call.moving = leg
        peer = call.other(leg).uri
        for target in targets:
            self._tasks.spawn(self._ring(call, target, peer))

    async def _complete_move(self, call: SwitchCall, new: CallLeg) -> None:
        old = call.moving
        assert old is not None
        ok = await media_up(new.leg, MEDIA_TIMEOUT_S, self.clock)
        call.moving = None
        if not ok or call.state is not CallPhase.CONNECTED:
            await self._drop(new, Reason.MEDIA_FAILED)
            old.publish(ev.MoveTerminated(reason="failed"))
            return
        new.held = False
        call.replace(old, new)
        self.on_call_changed(call)
        self._tasks.spawn(self._watch(new))
        self.apply_media(call)
        new.publish(ev.SessionOpen())
        old.publish(ev.MoveTerminated(reason="moved"))
        await self._drop(old, Reason.MOVED)

    # media modification (the gateway carries audio; each leg renegotiates with it) -------
    async def modify(self, leg: CallLeg, media_type: str, sdp: str | None = None) -> str:
        """``leg`` upgrades or downgrades: its offer ``sdp`` is answered now and the answer
        goes out in its ``mod-terminated`` once the far end settles; the far end gets
        ``mod-received`` with the gateway's new offer on its own leg."""
        call = self.require_connected(leg, "initiate-call-mod")
        if call.pending_mod is not None:
            raise CallStateError("initiate-call-mod (one is pending)", call.state)
        other = call.other(leg)
        mod_id = self._new_id()
        call.pending_mod = (mod_id, leg, media_type)
        try:
            leg.answer_sdp = await leg.leg.renegotiate(sdp) if sdp is not None else None
            offer = await other.leg.reoffer()
        except Exception:
            call.pending_mod = None
            raise
        other.publish(ev.ModReceived(mod_id=mod_id, media_type=media_type, sdp=offer))
        return mod_id

    async def settle_mod(
        self, leg: CallLeg, mod_id: str, accepted: bool, sdp: str | None = None
    ) -> None:
        """The far end accepts or rejects; ``sdp`` is its answer to ``mod-received``'s offer."""
        call = leg.call
        pending = call.pending_mod
        if pending is None or pending[0] != mod_id or pending[1] is leg:
            raise CallStateError(f"modification {mod_id}", call.state)
        if sdp is not None:
            await leg.leg.accept_answer(sdp)
        call.pending_mod = None
        _, initiator, media_type = pending
        if accepted:
            call.media_type = media_type
        reason = "success" if accepted else "rejected"
        answer, initiator.answer_sdp = initiator.answer_sdp, None
        initiator.publish(
            ev.ModTerminated(mod_id=mod_id, reason=reason, media_type=call.media_type, sdp=answer)
        )
        leg.publish(ev.ModTerminated(mod_id=mod_id, reason=reason, media_type=call.media_type))

    # ending -------------------------------------------------------------------------------------
    async def end(self, leg: CallLeg, reason: str, by_gateway: bool = False) -> None:
        """``leg`` hangs up, cancels or rejects (``by_gateway``: the gateway ends it)."""
        call = leg.call
        if call.state is CallPhase.ENDED:
            return
        if call.state is CallPhase.MERGED:  # each party of a merged call leaves on its own
            await self.part(leg, reason, notify=by_gateway)
            return
        if leg in call.ringing:
            # one ringing session rejects: the others keep ringing unless it was the last
            await self._drop(leg, None)
            if call.moving is not None and not call.ringing and not call.pending_rings:
                call.moving.publish(ev.MoveTerminated(reason=reason))
                call.moving = None
            if call.ringing or call.pending_rings or call.state is not CallPhase.RINGING:
                return
        for other in call.legs():
            notify = by_gateway or other is not leg
            await self._drop(other, reason if notify else None)  # None: the one who ended it
        call.ended_by = "" if by_gateway else leg.side
        await self._finish(call, reason)

    async def part(self, leg: CallLeg, reason: str, notify: bool) -> None:
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
        await self._drop(leg, reason if notify else None)
        if call.caller is None and call.callee is None:
            call.ended_by = leg.side if not notify else ""
            await self._finish(call, reason)

    async def _finish(self, call: SwitchCall, reason: str) -> None:
        timer, call.ring_timer = call.ring_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()  # it holds the call (and its legs) for the whole ring timeout
        if call.bridge:
            call.bridge.unbridge()
            call.bridge = None
        call.set_state(CallPhase.ENDED)
        call.ended_at = self.clock.time()
        call.reason = reason
        self.calls.pop(call.id, None)
        self.on_call_changed(call)

    async def _drop(self, leg: CallLeg, reason: str | None) -> None:
        """``leg`` is out: ``session-terminated`` (no reason: its own hang-up / reject)."""
        leg.publish(ev.SessionTerminated(reason=reason))
        leg.stop_tone()
        leg.session.legs.pop(leg.id, None)
        if leg in leg.call.ringing:
            leg.call.ringing.remove(leg)
            self._release(leg.session)
        await leg.leg.close()

    async def end_session(self, session: Session) -> None:
        waiting, session.waiting = session.waiting, []
        for call, _ in waiting:
            call.pending_rings -= 1
            self._maybe_nobody_answers(call)
        for leg in list(session.legs.values()):
            await self.end(leg, Reason.LOGGED_OUT)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            for leg in [p for p in (call.caller, call.callee) if p is not None]:
                await self.end(leg, Reason.HANGUP, by_gateway=True)
        self._tasks.cancel_all()
