"""The call switch (a back-to-back user agent): places calls, rings, answers, bridges, ends.

Every endpoint talks only to the gateway: the caller's leg and each ringing callee's leg
are separate peer connections, and the gateway bridges the caller's leg with the leg that
answers. Endpoints never negotiate with each other.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import numpy as np

from ivrbot.gateway.bridge import Bridge
from ivrbot.gateway.leg import Leg
from ivrbot.gateway.sessions import Session, SessionRegistry
from ivrbot.media.tones import hold_music, ringback
from ivrbot.media.tracks import Playback
from ivrbot.numbers import identity_candidates, identity_uri
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)

MEDIA_TIMEOUT_S = 10.0


class CallState(StrEnum):
    RINGING = "ringing"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ENDED = "ended"


class Reason(StrEnum):
    """Termination reasons sent with ``session-terminated``."""

    HANGUP = "Call terminated"
    CANCELED = "Call canceled"
    BUSY = "User busy"
    NOT_FOUND = "User not found"
    ANSWERED_ELSEWHERE = "Call answered elsewhere"
    TRANSFERRED = "Call transferred"
    MOVED = "Call moved"
    NO_ANSWER = "No answer"
    MEDIA_FAILED = "Media failed"
    LOGGED_OUT = "Session ended"
    MERGED = "Call merged into a conference"


class Membership(Protocol):
    """A call party's place in the conference its call was merged into (gateway/merge.py)."""

    def hold(self) -> None: ...

    def resume(self) -> None: ...

    async def leave(self, reason: str) -> None: ...


@dataclass(eq=False)
class CallLeg:
    """One session's view of a call: its call id, its media leg, its side."""

    id: str
    session: Session
    leg: Leg
    side: str  # 'caller' | 'callee'
    call: Call

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/calls/{self.id}"

    held: bool = False  # this side put the call on hold
    tone: Playback | None = None  # ringback or music on hold playing to this side
    membership: Membership | None = None  # in a conference's mix (a merged call)

    def publish(self, state: str, **fields: Any) -> None:
        event = {"type": "calls", "state": state, "resourceURL": self.resource_url}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.session.channel.publish(event)

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
class Call:
    id: str
    from_uri: str
    to_uri: str
    state: CallState = CallState.RINGING
    caller: CallLeg | None = None
    ringing: list[CallLeg] = field(default_factory=list)  # callee sessions, or move targets
    callee: CallLeg | None = None
    moving: CallLeg | None = None  # the leg whose user is moving the call to another session
    answering: CallLeg | None = None  # the ringing leg whose answer is being applied
    pending_rings: int = 0  # sessions about to ring (their offer is being made)
    media_type: str = "audio"
    pending_mod: tuple[str, CallLeg, str] | None = None  # (modId, initiator, new media type)
    bridge: Bridge | None = None
    merged: bool = False  # its parties are in a conference (or gone): no bridge any more
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    ring_timer: asyncio.Task[None] | None = None  # ends it "No answer"; cancelled once settled

    def set_state(self, new: CallState) -> None:
        if new is not self.state:
            log.info("call %s: %s -> %s", self.id, self.state, new)
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
        self, sessions: SessionRegistry, hold_audio: str = "music", ring_timeout_s: float = 60.0
    ) -> None:
        self.sessions = sessions
        self.ring_timeout_s = ring_timeout_s  # unanswered calls end with "No answer"
        self.hold_audio = hold_audio  # 'music' or 'silence' for the party left on hold
        self.calls: dict[str, Call] = {}
        self.on_call_ended: Callable[[Call], None] | None = None  # e.g. store the call record
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
        call = Call(self._new_id(), identity_uri(session.user_id), called_party)
        leg = Leg(f"{session.user_id}/{call.id}")
        caller = CallLeg(self._new_id(), session, leg, "caller", call)
        answer = await leg.answer_offer(sdp)
        call.caller = caller
        session.legs[caller.id] = caller
        self.calls[call.id] = call
        targets = self._targets(called_party, session)
        if not targets:
            self._later(self.end(caller, Reason.NOT_FOUND, by_gateway=True))
            return caller
        caller.publish("session-modified", provisionalSDP=answer)
        caller.play_tone(ringback())
        for target in targets:
            self._later(self._ring(call, target, call.from_uri))
        call.ring_timer = self._tasks.spawn(self._no_answer(call))
        return caller

    async def _no_answer(self, call: Call) -> None:
        await asyncio.sleep(self.ring_timeout_s)
        if call.state is CallState.RINGING and call.caller is not None:
            await self.end(call.caller, Reason.NO_ANSWER, by_gateway=True)

    @staticmethod
    def _has_pending(session: Session) -> bool:
        return session.offering > 0 or any(leg in leg.call.ringing for leg in session.legs.values())

    def _still_rings(self, call: Call) -> bool:
        return call.state is CallState.RINGING or (
            call.moving is not None and call.state is not CallState.ENDED
        )

    async def _ring(self, call: Call, target: Session, from_uri: str) -> None:
        if self._has_pending(target):
            call.pending_rings += 1
            target.waiting.append((call, from_uri))
            return
        leg = Leg(f"{target.user_id}/{call.id}")
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
        callee.publish("invitation-received", **{"from": from_uri, "to": call.to_uri, "sdp": offer})

    def _release(self, session: Session) -> None:
        """The session's pending call is settled: ring it with the next call waiting for it."""
        while session.waiting and not self._has_pending(session):
            call, from_uri = session.waiting.pop(0)
            call.pending_rings -= 1
            if self._still_rings(call):
                self._later(self._ring(call, session, from_uri))
                return
            self._maybe_nobody_answers(call)

    def _maybe_nobody_answers(self, call: Call) -> None:
        if call.state is CallState.RINGING and not call.ringing and not call.pending_rings:
            if call.caller is not None:
                self._later(self.end(call.caller, Reason.BUSY, by_gateway=True))

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
            self._later(self._complete_move(call, callee))
            return
        call.callee = callee
        call.set_state(CallState.CONNECTING)
        assert call.caller is not None
        call.caller.stop_tone()
        self._later(self._connect(call))

    async def _connect(self, call: Call) -> None:
        assert call.caller and call.callee
        results = await asyncio.gather(
            call.caller.leg.wait_connected(MEDIA_TIMEOUT_S),
            call.callee.leg.wait_connected(MEDIA_TIMEOUT_S),
        )
        if call.state is not CallState.CONNECTING:
            return
        if not all(results):
            await self.end(call.caller, Reason.MEDIA_FAILED, by_gateway=True)
            return
        call.answered_at = time.time()
        call.set_state(CallState.CONNECTED)
        self.apply_media(call)
        # both are told only once they hear each other (the caller's answer went out early)
        call.caller.publish("session-open", sdp=call.caller.leg.pc.localDescription.sdp)
        call.callee.publish("session-open")

    # who hears whom -------------------------------------------------------------------------
    def apply_media(self, call: Call) -> None:
        """Bridge the two parties, or, while one holds, give the other music or silence."""
        if call.bridge is not None:
            call.bridge.unbridge()
            call.bridge = None
        parties = [p for p in (call.caller, call.callee) if p is not None]
        for party in parties:
            party.stop_tone()
        if call.merged:  # the conference's mixer carries its parties' audio
            return
        if call.state is not CallState.CONNECTED or len(parties) != 2:
            return
        a, b = parties
        if not a.held and not b.held:
            call.bridge = Bridge(a.leg, b.leg)
            return
        for me, other in ((a, b), (b, a)):
            if other.held and not me.held and self.hold_audio == "music":
                me.play_tone(hold_music())

    def require_connected(self, leg: CallLeg, action: str, merged_ok: bool = False) -> Call:
        call = leg.call
        if call.state is not CallState.CONNECTED or leg.session.legs.get(leg.id) is not leg:
            raise CallStateError(action, call.state)
        if call.merged and not merged_ok:
            raise CallStateError(f"{action} (the call is in a conference)", call.state)
        return call

    async def hold(self, leg: CallLeg) -> None:
        call = self.require_connected(leg, "initiate-call-hold", merged_ok=True)
        if leg.membership is not None:  # out of the conference's mix; the others carry on
            leg.membership.hold()
        leg.held = True
        self.apply_media(call)
        leg.publish("session-modified", reason="held")
        if leg.membership is None:
            call.other(leg).publish("session-modified", reason="remote-held")

    async def resume(self, leg: CallLeg) -> None:
        call = self.require_connected(leg, "initiate-call-resume", merged_ok=True)
        if leg.membership is not None:
            leg.membership.resume()
        leg.held = False
        self.apply_media(call)
        leg.publish("session-modified", reason="resumed")
        if leg.membership is None:
            call.other(leg).publish("session-modified", reason="remote-resumed")

    # transfer and move -----------------------------------------------------------------------
    async def transfer(self, leg: CallLeg, target_id: str) -> None:
        """The session of ``leg`` joins its two far parties together and leaves both calls."""
        first = self.require_connected(leg, "initiate-call-transfer")
        target = leg.session.legs.get(target_id)
        if target is None or target is leg:
            raise CallStateError("initiate-call-transfer (no such second call)", first.state)
        second = self.require_connected(target, "initiate-call-transfer")
        a, b = first.other(leg), second.other(target)
        leg.publish("transfer-initiated", transferToCallId=target_id)
        for call in (first, second):
            if call.bridge is not None:
                call.bridge.unbridge()
                call.bridge = None
        joined = Call(self._new_id(), a.uri, b.uri, CallState.CONNECTED, caller=a, callee=b)
        joined.answered_at = time.time()
        a.call = b.call = joined
        a.held = b.held = False
        self.calls[joined.id] = joined
        self.apply_media(joined)
        a.publish("session-modified", reason="transferred", **{"from": b.uri})
        b.publish("session-modified", reason="transferred", **{"from": a.uri})
        leg.publish("transfer-terminated", reason="success", transferToCallId=target_id)
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
            leg.publish("move-terminated", reason="No other session of this user")
            return
        call.moving = leg
        peer = call.other(leg).uri
        for target in targets:
            self._later(self._ring(call, target, peer))

    async def _complete_move(self, call: Call, new: CallLeg) -> None:
        old = call.moving
        assert old is not None
        ok = await new.leg.wait_connected(MEDIA_TIMEOUT_S)
        call.moving = None
        if not ok or call.state is not CallState.CONNECTED:
            await self._drop(new, Reason.MEDIA_FAILED)
            old.publish("move-terminated", reason="failed")
            return
        new.held = False
        call.replace(old, new)
        self.apply_media(call)
        new.publish("session-open")
        old.publish("move-terminated", reason="moved")
        await self._drop(old, Reason.MOVED)

    # media modification (signalling only: the gateway carries audio) ---------------------
    async def modify(self, leg: CallLeg, media_type: str) -> str:
        call = self.require_connected(leg, "initiate-call-mod")
        if call.pending_mod is not None:
            raise CallStateError("initiate-call-mod (one is pending)", call.state)
        mod_id = self._new_id()
        call.pending_mod = (mod_id, leg, media_type)
        call.other(leg).publish("mod-received", modId=mod_id, newMediaType=media_type)
        return mod_id

    async def settle_mod(self, leg: CallLeg, mod_id: str, accepted: bool) -> None:
        call = leg.call
        pending = call.pending_mod
        if pending is None or pending[0] != mod_id or pending[1] is leg:
            raise CallStateError(f"modification {mod_id}", call.state)
        call.pending_mod = None
        _, initiator, media_type = pending
        if accepted:
            call.media_type = media_type
        reason = "accepted" if accepted else "rejected"
        initiator.publish(
            "mod-terminated", modId=mod_id, reason=reason, newMediaType=call.media_type
        )
        leg.publish("mod-terminated", modId=mod_id, reason=reason, newMediaType=call.media_type)

    # ending -------------------------------------------------------------------------------------
    async def end(self, leg: CallLeg, reason: str, by_gateway: bool = False) -> None:
        """``leg`` hangs up, cancels or rejects (``by_gateway``: the gateway ends it)."""
        call = leg.call
        if call.state is CallState.ENDED:
            return
        if call.merged:  # each party of a merged call leaves on its own
            await self.part(leg, reason, notify=by_gateway)
            return
        if leg in call.ringing:
            # one ringing session rejects: the others keep ringing unless it was the last
            await self._drop(leg, None)
            if call.moving is not None and not call.ringing and not call.pending_rings:
                call.moving.publish("move-terminated", reason=reason)
                call.moving = None
            if call.ringing or call.pending_rings or call.state is not CallState.RINGING:
                return
        for other in call.legs():
            notify = by_gateway or other is not leg
            await self._drop(other, reason if notify else None)
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
            await self._finish(call, reason)

    async def _finish(self, call: Call, reason: str) -> None:
        timer, call.ring_timer = call.ring_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()  # it holds the call (and its legs) for the whole ring timeout
        if call.bridge:
            call.bridge.unbridge()
            call.bridge = None
        call.set_state(CallState.ENDED)
        call.ended_at = time.time()
        call.reason = reason
        self.calls.pop(call.id, None)
        if self.on_call_ended is not None:
            self.on_call_ended(call)

    async def _drop(self, leg: CallLeg, reason: str | None) -> None:
        if reason is not None:
            leg.publish("session-terminated", reason=reason)
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

    def _later(self, coro: Any) -> None:
        self._tasks.spawn(coro)

    async def close(self) -> None:
        for call in list(self.calls.values()):
            for leg in [p for p in (call.caller, call.callee) if p is not None]:
                await self.end(leg, Reason.HANGUP, by_gateway=True)
        self._tasks.cancel_all()


class CallStateError(Exception):
    def __init__(self, action: str, state: CallState) -> None:
        super().__init__(f"the call is {state}; {action} is not allowed now")
        self.action = action
        self.state = state
