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
from typing import Any

from ivrbot.gateway.bridge import Bridge
from ivrbot.gateway.leg import Leg
from ivrbot.gateway.sessions import Session, SessionRegistry
from ivrbot.numbers import identity_candidates, identity_uri

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
    NO_ANSWER = "No answer"
    MEDIA_FAILED = "Media failed"
    LOGGED_OUT = "Session ended"


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

    def publish(self, state: str, **fields: Any) -> None:
        event = {"type": "calls", "state": state, "resourceURL": self.resource_url}
        event.update({k: v for k, v in fields.items() if v is not None})
        self.session.channel.publish(event)


@dataclass(eq=False)
class Call:
    id: str
    from_uri: str
    to_uri: str
    state: CallState = CallState.RINGING
    caller: CallLeg | None = None
    ringing: list[CallLeg] = field(default_factory=list)
    callee: CallLeg | None = None
    bridge: Bridge | None = None
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str = ""

    def set_state(self, new: CallState) -> None:
        log.info("call %s: %s -> %s", self.id, self.state, new)
        self.state = new

    def legs(self) -> list[CallLeg]:
        out = [self.caller] if self.caller else []
        return out + ([self.callee] if self.callee else []) + self.ringing


class Switch:
    def __init__(self, sessions: SessionRegistry) -> None:
        self.sessions = sessions
        self.calls: dict[str, Call] = {}
        self.on_call_ended: Callable[[Call], None] | None = None  # e.g. store the call record
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def _new_id() -> str:
        return secrets.token_hex(6)

    async def place(self, session: Session, called_party: str, sdp: str) -> CallLeg:
        """Take the caller's offer and ring every session of the called identity."""
        call = Call(self._new_id(), identity_uri(session.user_id), called_party)
        leg = Leg(f"{session.user_id}/{call.id}")
        caller = CallLeg(self._new_id(), session, leg, "caller", call)
        try:
            await leg.accept_offer(sdp)
        except Exception:
            await leg.close()
            raise
        call.caller = caller
        session.legs[caller.id] = caller
        self.calls[call.id] = call
        targets = [
            s for uid in identity_candidates(called_party) for s in self.sessions.of_user(uid)
        ]
        targets = [s for s in targets if s.id != session.id]
        if not targets:
            self._later(self.end(caller, Reason.NOT_FOUND, by_gateway=True))
            return caller
        for target in targets:
            self._later(self._ring(call, target))
        return caller

    async def _ring(self, call: Call, target: Session) -> None:
        leg = Leg(f"{target.user_id}/{call.id}")
        callee = CallLeg(self._new_id(), target, leg, "callee", call)
        offer = await leg.make_offer()
        if call.state is not CallState.RINGING:
            await leg.close()
            return
        call.ringing.append(callee)
        target.legs[callee.id] = callee
        callee.publish(
            "invitation-received", **{"from": call.from_uri, "to": call.to_uri, "sdp": offer}
        )

    async def answer(self, callee: CallLeg, sdp: str) -> None:
        """The callee's answer: bridge it with the caller once both legs carry media."""
        call = callee.call
        if call.state is not CallState.RINGING or callee not in call.ringing:
            raise CallStateError("call-answer", call.state)
        await callee.leg.accept_answer(sdp)
        call.ringing.remove(callee)
        call.callee = callee
        call.set_state(CallState.CONNECTING)
        for other in list(call.ringing):
            await self._drop(other, Reason.ANSWERED_ELSEWHERE)
        assert call.caller is not None
        answer = await call.caller.leg.make_answer()
        call.caller.publish("session-open", sdp=answer)
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
        call.bridge = Bridge(call.caller.leg, call.callee.leg)
        call.answered_at = time.time()
        call.set_state(CallState.CONNECTED)
        call.callee.publish("session-open")

    async def end(self, leg: CallLeg, reason: str, by_gateway: bool = False) -> None:
        """End the whole call because ``leg`` hung up, cancelled or rejected."""
        call = leg.call
        if call.state is CallState.ENDED:
            return
        if call.state is CallState.RINGING and leg.side == "callee":
            # one ringing session rejects: the others keep ringing unless it was the last
            await self._drop(leg, None)
            if call.ringing:
                return
        call.set_state(CallState.ENDED)
        call.ended_at = time.time()
        call.reason = reason
        if call.bridge:
            call.bridge.unbridge()
        for other in call.legs():
            notify = by_gateway or other is not leg
            await self._drop(other, reason if notify else None)
        self.calls.pop(call.id, None)
        if self.on_call_ended is not None:
            self.on_call_ended(call)

    async def _drop(self, leg: CallLeg, reason: str | None) -> None:
        if reason is not None:
            leg.publish("session-terminated", reason=reason)
        leg.session.legs.pop(leg.id, None)
        if leg in leg.call.ringing:
            leg.call.ringing.remove(leg)
        await leg.leg.close()

    async def end_session(self, session: Session) -> None:
        for leg in list(session.legs.values()):
            await self.end(leg, Reason.LOGGED_OUT)

    def _later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("switch task failed", exc_info=task.exception())

    async def close(self) -> None:
        for call in list(self.calls.values()):
            if call.caller:
                await self.end(call.caller, Reason.HANGUP, by_gateway=True)
        for task in list(self._tasks):
            task.cancel()


class CallStateError(Exception):
    def __init__(self, action: str, state: CallState) -> None:
        super().__init__(f"the call is {state}; {action} is not allowed now")
        self.action = action
        self.state = state
