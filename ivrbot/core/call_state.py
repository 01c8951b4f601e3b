"""The gateway's call state machines, one checked table each: the phases of a two-party
call (``CallPhase``; the Phone's own ``ivrbot.phone.call.CallState`` is the client's view,
named apart), the states of a session's party in it (``PartyState``) and of a conference leg
(``LegState``); the one function that changes a state (:func:`change`: it checks the change
against the table and logs ``old -> new``), and the reasons a party is told when it is
dropped."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

log = logging.getLogger("ivrbot.core.state")

MEDIA_TIMEOUT_S = 10.0  # an answered leg whose media is not up by then has failed


class Reason(StrEnum):
    """Reasons sent with ``session-terminated`` (calls and conferences)."""

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
    LOST = "Connection lost"  # a party's peer stopped answering (ICE consent) or closed
    REMOVED = "Removed from conference"
    ENDED = "Conference ended"


class CallPhase(StrEnum):
    """A two-party call of the switch. One thing happens to a connected call at a time: a
    media modification, a move, a merge or a transfer starts only from ``CONNECTED``."""

    RINGING = "ringing"  # the callee's sessions (or the in-process bot) are being rung
    ANSWERING = "answering"  # a ringing session's answer is being applied (others refused)
    CONNECTING = "connecting"  # answered; waiting for both legs' media
    CONNECTED = "connected"  # bridged (or one side holding)
    MODIFYING = "modifying"  # connected; a media modification waits for the far end
    MOVING = "moving"  # connected; the mover's other sessions ring to take the call over
    MOVE_CONNECTING = "move-connecting"  # connected; a move's target answered, media not up
    MERGED = "merged"  # its parties are in a conference's mix: no bridge any more
    ENDED = "ended"


RINGS = frozenset({CallPhase.RINGING, CallPhase.ANSWERING})  # the ring timer runs
MOVES = frozenset({CallPhase.MOVING, CallPhase.MOVE_CONNECTING})  # the mover is known
# the two parties are connected (bridged, or one holds) whatever else is going on
TALKING = frozenset({CallPhase.CONNECTED, CallPhase.MODIFYING, *MOVES})


class PartyState(StrEnum):
    """One session's leg of a two-party call (``CallLeg``)."""

    RINGING = "ringing"  # offered to its session (invitation-received); not answered
    ACTIVE = "active"  # in the call: bridged, or hearing music while the far end holds
    HELD = "held"  # it put the call on hold
    ENDED = "ended"  # dropped: session-terminated, its media closed


class LegState(StrEnum):
    """One session's leg of a conference (host or participant)."""

    INVITED = "invited"  # an offer went to an invitee's session; no answer yet
    CONNECTING = "connecting"  # the answer (or the host's offer) is taken; media not up
    JOINED = "joined"  # in the mix
    HELD = "held"  # connected, out of the mix
    ENDED = "ended"


CALL_CHANGES: Mapping[CallPhase, frozenset[CallPhase]] = {
    CallPhase.RINGING: frozenset({CallPhase.ANSWERING, CallPhase.ENDED}),
    # the answer is applied (connecting), or could not be (ringing on)
    CallPhase.ANSWERING: frozenset({CallPhase.CONNECTING, CallPhase.RINGING, CallPhase.ENDED}),
    CallPhase.CONNECTING: frozenset({CallPhase.CONNECTED, CallPhase.ENDED}),
    CallPhase.CONNECTED: frozenset(
        {CallPhase.MODIFYING, CallPhase.MOVING, CallPhase.MERGED, CallPhase.ENDED}
    ),
    CallPhase.MODIFYING: frozenset({CallPhase.CONNECTED, CallPhase.ENDED}),  # settled or failed
    # a target answers; or every target said no (or none rang): the call stays where it was
    CallPhase.MOVING: frozenset({CallPhase.MOVE_CONNECTING, CallPhase.CONNECTED, CallPhase.ENDED}),
    # moved or failed (connected either way); the answer could not be applied (ringing on)
    CallPhase.MOVE_CONNECTING: frozenset({CallPhase.CONNECTED, CallPhase.MOVING, CallPhase.ENDED}),
    CallPhase.MERGED: frozenset({CallPhase.ENDED}),
    CallPhase.ENDED: frozenset(),
}
PARTY_CHANGES: Mapping[PartyState, frozenset[PartyState]] = {
    PartyState.RINGING: frozenset({PartyState.ACTIVE, PartyState.ENDED}),  # answered, or not
    PartyState.ACTIVE: frozenset({PartyState.HELD, PartyState.ENDED}),
    # resumed (or a transfer or merge took it off hold), or dropped
    PartyState.HELD: frozenset({PartyState.ACTIVE, PartyState.ENDED}),
    PartyState.ENDED: frozenset(),
}
LEG_CHANGES: Mapping[LegState, frozenset[LegState]] = {
    LegState.INVITED: frozenset({LegState.CONNECTING, LegState.ENDED}),
    LegState.CONNECTING: frozenset({LegState.JOINED, LegState.ENDED}),
    LegState.JOINED: frozenset({LegState.HELD, LegState.ENDED}),
    LegState.HELD: frozenset({LegState.JOINED, LegState.ENDED}),
    LegState.ENDED: frozenset(),
}

S = TypeVar("S", CallPhase, PartyState, LegState)


class IllegalChange(RuntimeError):
    """A state change the machine does not allow: a bug in the gateway, never a user's."""


def change(what: str, old: S, new: S, allowed: Mapping[S, frozenset[S]]) -> bool:
    """Check and log the change of ``what`` from ``old`` to ``new``; False when it is no
    change (the same state), else True. Raises :class:`IllegalChange` for a change that
    ``allowed`` does not list."""
    if new is old:
        return False
    if new not in allowed[old]:
        raise IllegalChange(f"{what}: {old} -> {new} is not a change this state allows")
    log.info("%s: %s -> %s", what, old, new)
    return True


class CallStateError(Exception):
    """An action the call's state does not allow now (the wire answers SVC8501)."""

    def __init__(self, action: str, state: CallPhase) -> None:
        super().__init__(f"the call is {state}; {action} is not allowed now")
        self.action = action
        self.state = state
