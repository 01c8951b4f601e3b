"""The call switch (a back-to-back user agent): places calls, rings, answers, bridges, ends.

Every endpoint talks only to the gateway: the caller's leg and each ringing callee's leg
are separate peer connections, and the gateway bridges the caller's leg with the leg that
answers. Endpoints never negotiate with each other.

``Switch`` is the one facade the wire API, the workers, the SIP connector and the bots
call; what it does is in a module per responsibility: ``ringing`` (placing, admission,
ringing), ``connecting`` (answering, connecting, who hears whom), ``modifications`` (hold,
resume, media changes), ``transfers`` (transfer and move), ``ending``. A call's phase
changes only through ``SwitchCall.set_state`` (``core/switch_call.py``), checked by
``change`` in ``core/call_state.py``.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.core import connecting, ending, modifications, ringing, transfers
from ivrbot.core.actions import CallAction, apply_action
from ivrbot.core.call_state import CallPhase, CallStateError, Reason
from ivrbot.core.endpoints import EndpointKinds
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.core.switch_call import Acceptor, CallLeg, HandOff, Membership, SwitchCall
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.core.conferences import Conferences

__all__ = [
    "Acceptor", "CallLeg", "CallPhase", "CallStateError", "HandOff", "Membership", "Reason",
    "Switch", "SwitchCall",
]  # fmt: skip


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
        # the conferences a call can be merged into (initiate-call-merge), if any
        self.conferences: Conferences | None = None
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
        self.tasks = TaskSet("switch")

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(6)

    def legs_of(self, session: Session) -> list[CallLeg]:
        """The session's legs in this switch's calls."""
        return [leg for c in self.calls.values() for leg in c.legs() if leg.session is session]

    # what the wire, the workers, the SIP connector and the bots ask ---------------------
    async def place(self, session: Session, called_party: str, sdp: str) -> CallLeg:
        """Take the caller's offer, give early media (ringback), ring the called identity."""
        return await ringing.place(self, session, called_party, sdp)

    async def act(self, leg: CallLeg, action: CallAction) -> str | None:
        """Do ``action`` on ``leg`` (core/actions.py); the modId for hold, resume, a change."""
        return await apply_action(self, leg, action)

    async def answer(self, callee: CallLeg, sdp: str) -> None:
        """A ringing session answers: the call (or a call being moved) is bridged to it."""
        await connecting.answer(self, callee, sdp)

    async def hold(self, leg: CallLeg, sdp: str | None = None) -> str:
        return await modifications.hold(self, leg, sdp)

    async def resume(self, leg: CallLeg, sdp: str | None = None) -> str:
        return await modifications.resume(self, leg, sdp)

    async def modify(self, leg: CallLeg, media_type: str, sdp: str | None = None) -> str:
        return await modifications.modify(self, leg, media_type, sdp)

    async def settle_mod(
        self, leg: CallLeg, mod_id: str, accepted: bool, sdp: str | None = None
    ) -> None:
        await modifications.settle_mod(self, leg, mod_id, accepted, sdp)

    async def transfer(self, leg: CallLeg, target_id: str) -> None:
        await transfers.transfer(self, leg, target_id)

    async def move(self, leg: CallLeg) -> None:
        await transfers.move(self, leg)

    async def end(self, leg: CallLeg, reason: str, by_gateway: bool = False) -> None:
        """``leg`` hangs up, cancels or rejects (``by_gateway``: the gateway ends it)."""
        await ending.end(self, leg, reason, by_gateway)

    async def part(self, leg: CallLeg, reason: str, notify: bool) -> None:
        await ending.part(self, leg, reason, notify)

    async def end_session(self, session: Session) -> None:
        await ending.end_session(self, session)

    async def close(self) -> None:
        await ending.close(self)

    # what the modules (and merge) share -------------------------------------------------
    def require(self, leg: CallLeg, action: str, phases: frozenset[CallPhase]) -> SwitchCall:
        return modifications.require(leg, action, phases)

    def apply_media(self, call: SwitchCall) -> None:
        connecting.apply_media(self, call)

    def release(self, session: Session) -> None:
        ringing.release(self, session)

    def maybe_nobody_answers(self, call: SwitchCall) -> None:
        ringing.maybe_nobody_answers(self, call)

    async def drop(self, leg: CallLeg, reason: str | None) -> None:
        await ending.drop(self, leg, reason)

    async def finish(self, call: SwitchCall, reason: str) -> None:
        await ending.finish(self, call, reason)

    async def watch(self, party: CallLeg) -> None:
        await connecting.watch(self, party)
