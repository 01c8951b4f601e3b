"""The Phone's call states (docs/spec/phone-api.md, "Call states") and the changes each
allows: the client's view of a call, named apart from the gateway's ``CallPhase``
(:mod:`ivrbot.core.call_state`). :meth:`ivrbot.phone.call.Call.set_state` is the one place a
call's state changes; it asks :func:`check_change` first.

A change the table does not list is a bug in the Phone, never a caller's mistake. Under
test (:data:`STRICT`, set by the test suite) it raises :class:`IllegalCallChange`; in
production it is logged at ERROR with its stack and the change still happens, so the call
goes on (a wrong state shown is better than a call the Phone no longer follows).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum

log = logging.getLogger(__name__)


class CallState(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"
    REJECTED = "rejected"
    CANCELED = "canceled"
    HELD = "held"
    MOVE_INITIATED = "move-initiated"
    MOVE_FAILED = "move-failed"
    MOVED = "moved"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"
    MODIFICATION_INITIATED = "modification-initiated"
    MODIFICATION_ACCEPTED = "modification-accepted"


# states after which the call is gone from this Phone
ENDED = frozenset(
    {
        CallState.DISCONNECTED,
        CallState.REJECTED,
        CallState.CANCELED,
        CallState.MOVED,
        CallState.TRANSFERRED,
    }
)
LIVE = (CallState.CONNECTING, CallState.CONNECTED, CallState.HELD)

_GONE = frozenset({CallState.DISCONNECTING, CallState.DISCONNECTED})  # any live call may end
S = CallState
CHANGES: Mapping[CallState, frozenset[CallState]] = {
    # ringing here (incoming), or not yet placed (outgoing): answered or dialled, refused
    # here (rejected), given up by the far end while ringing (canceled)
    S.CREATED: frozenset({S.CONNECTING, S.REJECTED, S.CANCELED}) | _GONE,
    # waiting for the answer and the media: up, busy (rejected), cancel() (canceled)
    S.CONNECTING: frozenset({S.CONNECTED, S.REJECTED, S.CANCELED}) | _GONE,
    # hold, move, transfer, upgrade/downgrade asked here; one offered by the far end and
    # accepted (modification-accepted)
    S.CONNECTED: frozenset({S.HELD, S.MOVE_INITIATED, S.TRANSFERRING})
    | frozenset({S.MODIFICATION_INITIATED, S.MODIFICATION_ACCEPTED})
    | _GONE,
    # resume; a modification offered while held and accepted; the background call of a
    # transfer (transferred with the call in front) or the call in front being transferred
    S.HELD: frozenset({S.CONNECTED, S.MODIFICATION_ACCEPTED, S.TRANSFERRING, S.TRANSFERRED})
    | _GONE,
    # moved; refused by the gateway (back to connected) or failed at the far end
    S.MOVE_INITIATED: frozenset({S.MOVED, S.MOVE_FAILED, S.CONNECTED}) | _GONE,
    S.MOVE_FAILED: frozenset({S.CONNECTED}) | _GONE,
    # transferred; refused or failed: back to where it was
    S.TRANSFERRING: frozenset({S.TRANSFERRED, S.CONNECTED, S.HELD}) | _GONE,
    # accepted, or rejected (back to connected)
    S.MODIFICATION_INITIATED: frozenset({S.MODIFICATION_ACCEPTED, S.CONNECTED}) | _GONE,
    S.MODIFICATION_ACCEPTED: frozenset({S.CONNECTED, S.HELD}) | _GONE,
    S.DISCONNECTING: frozenset({S.DISCONNECTED}),
    S.DISCONNECTED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELED: frozenset(),
    S.MOVED: frozenset(),
    S.TRANSFERRED: frozenset(),
}

STRICT = False  # True under test: a change the table does not allow raises


class IllegalCallChange(RuntimeError):
    """A call state change :data:`CHANGES` does not allow: a bug in the Phone."""


def check_change(what: str, old: CallState, new: CallState) -> bool:
    """Check the change of ``what`` from ``old`` to ``new`` and log it (``old -> new``);
    False when it is no change. A change the table does not allow raises
    :class:`IllegalCallChange` when :data:`STRICT`, else is logged loudly and allowed."""
    if new is old:
        return False
    if new not in CHANGES[old]:
        message = f"{what}: {old} -> {new} is not a change the call states allow"
        if STRICT:
            raise IllegalCallChange(message)
        log.error("%s (a bug in the Phone; the call goes on)", message, stack_info=True)
    log.info("%s: %s -> %s", what, old, new)
    return True
