"""How a call ended, in one word: the one vocabulary of the ``call-end`` and ``flow-end`` log
lines, the gateway's and the flows' call records, the dashboard, the ``outcome`` label of
``/metrics`` and campaign attempts (README "Outcomes").

The same fact has the same name everywhere: a call a bot in this process ran ends with its
flow's outcome on the gateway's ``call-end`` line too, and a campaign attempt's outcome is
its flow record's (plus the campaign's own ``dnc``). Records written by earlier versions
are read back in these names (:func:`read`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    # still going: a record is written as the call starts (the dashboard, ``calls list``)
    IN_PROGRESS = "in-progress"
    # answered and ended normally: the bot's flow ended it (hung up, ran out of steps), or,
    # on a call between people, either party hung up
    COMPLETED = "completed"
    # the person talking to a bot hung up before its flow ended
    CALLER_HANGUP = "caller-hangup"
    # an answering machine answered an outbound call (message left, or hung up by policy)
    MACHINE = "machine"
    # the callee asked not to be called again (the flow set call.vars["result"] = "opted-out")
    OPTED_OUT = "opted-out"
    # the caller gave no answer at all after a Menu's or Ask's retries
    NO_INPUT = "no-input"
    # the caller's answers matched no choice after a Menu's or Ask's retries
    NO_MATCH = "no-match"
    # a step of the flow failed (the record's ``error`` names it, with file and line)
    ERROR = "error"
    # a Transfer step (or a party) handed the call to someone else
    TRANSFERRED = "transferred"
    # a Move step (or a party) moved the call to another session of the same identity
    MOVED = "moved"
    # a Conference step put the caller in a room
    CONFERENCED = "conferenced"
    # the parties merged their call into a conference (a call between people)
    MERGED = "merged"
    # the callee turned the call down or was busy ("User busy", SIP 486/600, a bot with no
    # room left within its queue time)
    BUSY = "busy"
    # the callee declined it (SIP 603 Decline only)
    REJECTED = "rejected"
    # it rang until the ring timeout (the gateway's, or a campaign's ring_timeout_s)
    NO_ANSWER = "no-answer"
    # the caller hung up while it rang (a person or a bot in another process was rung)
    CANCELED = "canceled"
    # a person reached a bot and was left before its flow served them: hung up while the
    # bot let it ring (Flow(rings=N)), or answered an outbound call before any step ran
    ABANDONED = "abandoned"
    # nobody is logged in as the number called (SIP 404/604)
    NOT_FOUND = "not-found"
    # the call could not be placed (SIP trunk unreachable, 5xx, the bot could not dial)
    FAILED = "failed"
    # a party's media could not be set up or failed during the call
    MEDIA_FAILED = "media-failed"
    # a party's peer stopped answering (ICE consent) or closed
    CONNECTION_LOST = "connection-lost"
    # a party's session ended (logged out or expired) during the call
    SESSION_ENDED = "session-ended"
    # another session of the callee answered (the record of a session that was rung)
    ANSWERED_ELSEWHERE = "answered-elsewhere"
    # the process died during the call (settled at the next start)
    INTERRUPTED = "interrupted"
    # campaigns only: on a do-not-call list when its turn came: not dialled
    DNC = "dnc"


# the gateway's termination reasons (gateway.call_state.Reason, sip.connector.failure_reason)
REASONS: Mapping[str, Outcome] = {
    "Call terminated": Outcome.COMPLETED,
    "Call canceled": Outcome.CANCELED,
    "User busy": Outcome.BUSY,
    "Call rejected": Outcome.REJECTED,
    "User not found": Outcome.NOT_FOUND,
    "No answer": Outcome.NO_ANSWER,
    "Unreachable": Outcome.FAILED,
    "Call answered elsewhere": Outcome.ANSWERED_ELSEWHERE,
    "Call transferred": Outcome.TRANSFERRED,
    "Call moved": Outcome.MOVED,
    "Call merged into a conference": Outcome.MERGED,
    "Removed from conference": Outcome.MERGED,
    "Conference ended": Outcome.MERGED,
    "Media failed": Outcome.MEDIA_FAILED,
    "Connection lost": Outcome.CONNECTION_LOST,
    "Session ended": Outcome.SESSION_ENDED,
    "interrupted": Outcome.INTERRUPTED,
}

# outcomes of a call that was answered (a campaign's abandon ratio counts them)
ANSWERED = frozenset({
    Outcome.COMPLETED, Outcome.CALLER_HANGUP, Outcome.MACHINE, Outcome.OPTED_OUT,
    Outcome.NO_INPUT, Outcome.NO_MATCH, Outcome.ERROR, Outcome.TRANSFERRED, Outcome.MOVED,
    Outcome.CONFERENCED, Outcome.ABANDONED,
})  # fmt: skip

# names earlier versions wrote -> today's (see also read())
OLD_NAMES: Mapping[str, Outcome] = {
    "hangup": Outcome.COMPLETED,  # the /metrics label of an answered call
    "lost": Outcome.CONNECTION_LOST,
    "unreachable": Outcome.FAILED,
    "other": Outcome.FAILED,
}


def of_reason(reason: str, answered: bool) -> Outcome:
    """The outcome of a call the gateway ended for ``reason`` (no flow's word on it): an
    answered call hung up is ``completed``; an unknown reason is ``completed`` when the
    call was answered, else ``failed``; no reason before the answer: the caller's side
    gave up (``canceled``)."""
    if reason in REASONS:
        return REASONS[reason]
    if answered:
        return Outcome.COMPLETED
    return Outcome.CANCELED if not reason else Outcome.FAILED


def of_flow(set_outcome: str, variables: Mapping[str, Any], ran_steps: bool, ended: str) -> str:
    """The outcome of an answered call a flow ran, as it ends: ``set_outcome`` what the
    flow already recorded ('' none; else error, transferred, moved, conferenced, no-input,
    ...), ``variables`` the call's, ``ran_steps`` whether a step began, ``ended`` the
    gateway's reason when the other party or the gateway ended the call ('' the bot did)."""
    if variables.get("result") == Outcome.OPTED_OUT:  # first: never to be called again
        return Outcome.OPTED_OUT
    if set_outcome:
        return set_outcome
    if variables.get("answered_by") == "machine":
        return Outcome.MACHINE
    if not ran_steps:
        return Outcome.ABANDONED
    if not ended:
        return Outcome.COMPLETED
    outcome = of_reason(ended, answered=True)
    return Outcome.CALLER_HANGUP if outcome == Outcome.COMPLETED else outcome


def read(name: str, error: str = "") -> str:
    """A stored outcome in today's names: a flow record's 'not-answered' becomes what its
    ``error`` (the gateway's reason) says ('User busy': busy), and so on."""
    if name == "not-answered":
        return of_reason(error, answered=False) if error else Outcome.NO_ANSWER
    return OLD_NAMES.get(name, name)


def stored_as(outcome: str) -> list[str]:
    """Every stored name a record of ``outcome`` may carry (today's and earlier ones), to
    look records up by outcome; :func:`read` tells which of them really are."""
    names = {outcome, *(old for old, new in OLD_NAMES.items() if new == outcome)}
    if outcome in set(REASONS.values()) | {Outcome.NO_ANSWER}:
        names.add("not-answered")
    return sorted(names)
