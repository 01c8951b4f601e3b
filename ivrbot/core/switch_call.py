"""A call of the switch (``SwitchCall``) and a session's side of it (``CallLeg``, the call
handle of a direct call), with what the switch asks of a bot and of a conference.

A call's phase changes only through :meth:`SwitchCall.set_state` (checked against the table
in ``core/call_state.py``, logged ``old -> new``); the data that belongs to a phase (the ring
timer, the mover, the pending media modification) goes when the call leaves that phase."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ivrbot.core import events as ev
from ivrbot.core.bridge import Bridge
from ivrbot.core.call_state import (
    CALL_CHANGES,
    MOVES,
    PARTY_CHANGES,
    RINGS,
    CallPhase,
    CallStateError,
    PartyState,
    change,
)
from ivrbot.core.endpoints import Endpoint
from ivrbot.core.sessions import Session
from ivrbot.media.tracks import Playback
from ivrbot.numbers import identity_uri

if TYPE_CHECKING:
    from ivrbot.core.actions import CallAction
    from ivrbot.core.switch import Switch


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
    """One session's view of a call: its call id, its media leg, its side. The call handle
    (core/handle.py) of a call this process's switch runs."""

    id: str
    session: Session
    leg: Endpoint
    side: str  # 'caller' | 'callee'
    call: SwitchCall
    switch: Switch
    state: PartyState = PartyState.ACTIVE  # a callee's starts RINGING

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/calls/{self.id}"

    @property
    def endpoint(self) -> Endpoint:
        return self.leg

    def set_state(self, new: PartyState) -> None:
        """The one place the leg's state changes (checked against PARTY_CHANGES, logged)."""
        if change(f"leg {self.id}", self.state, new, PARTY_CHANGES):
            self.state = new

    @property
    def held(self) -> bool:
        """This side put the call on hold."""
        return self.state is PartyState.HELD

    answer_sdp: str | None = None  # the answer to this side's offer, until it goes out
    tone: Playback | None = None  # ringback or music on hold playing to this side
    membership: Membership | None = None  # in a conference's mix (a merged call)
    told_far_held: bool = False  # this side was told its far end holds (session-modified)

    # the call handle ---------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.call.id

    async def act(self, action: CallAction) -> str | None:
        return await self.switch.act(self, action)

    async def end(self, reason: str) -> None:
        await self.switch.end(self, reason)

    def hand_off(self, target: str) -> Awaitable[HandOff] | None:
        return self.switch.transfer_out(self, target)

    # --------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class PendingMod:
    """A media modification waiting for the far end (the call is ``MODIFYING``)."""

    mod_id: str
    initiator: CallLeg
    media_type: str


@dataclass(eq=False)
class SwitchCall:
    id: str
    from_uri: str
    to_uri: str
    state: CallPhase = CallPhase.RINGING
    caller: CallLeg | None = None
    ringing: list[CallLeg] = field(default_factory=list)  # callee sessions, or move targets
    callee: CallLeg | None = None
    # sessions about to ring (their offer is being made, a bot deciding, queued): a count,
    # not a phase; the call is busy when nothing rings and none is pending
    pending_rings: int = 0
    media_type: str = "audio"
    bridge: Bridge | None = None
    started_at: float = 0.0  # the switch's clock.time() when placed
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str = ""
    ended_by: str = ""  # the side that ended it: 'caller' | 'callee' | '' (the gateway)
    # data that lives as long as its phase (set_state drops it when the call leaves it)
    ring_timer: asyncio.Task[None] | None = None  # RINGS: ends it "No answer"
    mover: CallLeg | None = None  # MOVES: the leg whose user moves the call
    mod: PendingMod | None = None  # MODIFYING

    def set_state(self, new: CallPhase) -> None:
        """The one place the call's state changes (checked against CALL_CHANGES, logged)."""
        if not change(f"call {self.id}", self.state, new, CALL_CHANGES):
            return
        self.state = new
        if new not in RINGS and self.ring_timer is not None:
            timer, self.ring_timer = self.ring_timer, None
            if timer is not asyncio.current_task():
                timer.cancel()  # it holds the call (and its legs) for the whole ring timeout
        if new not in MOVES:
            self.mover = None
        if new is not CallPhase.MODIFYING:
            self.mod = None

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
