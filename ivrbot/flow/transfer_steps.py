"""Steps that hand the caller on: Transfer (to a person or another number) and Move.

Both are re-bridging inside the gateway (docs/spec/phone-api.md): the bot never carries the
caller's audio after the hand-over, and its session is free for the next call at once.

Transfer, step by step: the bot puts the caller on hold (``phone.add_call`` holds the call,
so the gateway plays music on hold to the caller) and dials the target as a second call of
the same session. When the target answers, a blind transfer joins the two at once
(``phone.transfer()``: the gateway bridges the caller with the target and drops both of
the bot's legs); a warm one first speaks ``announce`` to the target. When the target turns
the call down, does not answer within ``timeout_s``, or cannot be dialled, the bot ends the
second call, takes the caller off hold, says ``say`` (a sorry prompt) and goes on to
``fallback``.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ivrbot.clock import Clock
from ivrbot.errors import FlowError, PhoneException
from ivrbot.flow.steps import Edge, Problem, Step
from ivrbot.numbers import called_party_uri
from ivrbot.outcomes import Outcome, of_reason
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.phone import Phone

if TYPE_CHECKING:
    from ivrbot.core.switch import HandOff
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.flow import Flow

log = logging.getLogger(__name__)

TRANSFER_MODES = ("blind", "warm")
POLL_S = 0.05
ANNOUNCE_LEAD_S = 0.3  # after the target answers: let them say hello before the announcement
SETTLE_S = 5.0  # the longest wait for a hand-over or a resume the gateway already confirmed
# The gateway's reason for ending a call that never connected -> the transfer's outcome
# (README "Outcomes"); any other reason: 'failed'.
REASONS = {r: Outcome(r) for r in (Outcome.BUSY, Outcome.REJECTED, Outcome.NO_ANSWER)}


@dataclass(frozen=True)
class TransferResult:
    """What a Transfer (or Move) step stored in ``call.vars[name]`` and the call's record."""

    target: str
    mode: str  # 'blind' | 'warm' | 'move'
    # 'transferred' | 'no-answer' | 'busy' | 'rejected' (SIP 603) | 'failed' | 'caller-hangup';
    # a Move: 'moved' | 'failed' | 'caller-hangup' (README "Outcomes")
    outcome: str
    reason: str = ""  # why it did not happen: the gateway's reason or the error
    ring_s: float = 0.0  # how long the target rang (until it answered, or the bot gave up)
    announcement: str = ""  # what a warm transfer said to the target
    # a transfer handed to the far end (a SIP caller's REFER): what it reported on the way
    progress: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.outcome in ("transferred", "moved")

    def to_dict(self) -> dict[str, Any]:
        out = {
            "target": self.target,
            "mode": self.mode,
            "outcome": self.outcome,
            "reason": self.reason,
            "ring_s": round(self.ring_s, 2),
            "announcement": self.announcement,
        }
        return out | ({"progress": list(self.progress)} if self.progress else {})


class WithFallback:
    """What Transfer and Conference share: when they fail the caller hears ``say`` and the
    flow goes to ``fallback`` (default ``next``); a static ``announce`` is synthesised when
    the bot starts (one with ``{variables}`` per call)."""

    next: str | None
    fallback: str | None
    say: str | None
    announce: str | None

    def prompt_texts(self) -> list[str]:
        texts = [self.say] if self.say else []
        if self.announce and not format_fields(self.announce):
            texts.append(self.announce)
        return texts


@dataclass
class Transfer(WithFallback, Step):
    """Hand the caller to ``to`` (a number, or ``user@domain``): blind, or warm.

    ``mode='blind'`` joins the caller and the target as soon as the target answers;
    ``mode='warm'`` first speaks ``announce`` to the target (``str.format`` with the call's
    variables: ``"A caller about account {account}"``). The caller hears music on hold
    meanwhile. After a transfer the flow ends (record outcome 'transferred'). When it does
    not happen (the target rejects, does not answer within ``timeout_s``, or the dial fails)
    the caller is taken off hold, hears ``say`` if given, and the flow goes to ``fallback``
    (default ``next``, then the next step in order). ``call.vars[name]`` holds a
    :class:`TransferResult`; the call's record lists it under ``transfers``.
    """

    reaches_others = True

    to: str
    mode: str = "blind"
    announce: str | None = None
    timeout_s: float = 20.0
    fallback: str | None = None
    next: str | None = None
    say: str | None = None
    voice: str | None = None
    colour: ClassVar[str] = "#facc15"

    async def run(self, call: FlowCall) -> str | None:
        result = await call.transfer(self)
        if result.done:
            return None
        call.listener.clear()  # keys pressed on hold answer nothing
        if self.say:
            await call.say(self.say, voice=self.voice)
        return self.fallback or self.next

    def edges(self, following: str | None) -> list[Edge]:
        return fallback_edge(self.name, self.fallback or self.next or following)

    def summary(self) -> str:
        return f"{self.mode} to {self.to}"

    def check(self, flow: Flow) -> list[Problem]:
        out = hand_over_problems(self)
        add = out.append
        to = self.to
        if not isinstance(to, str) or not to.strip():
            add(self.problem("Transfer has no target: give to='agent@ivrbot.local' or a number"))
        elif to.startswith(("sip:", "sips:")):  # a SIP caller is REFERred there (blind)
            if self.mode != "blind":
                add(self.problem(f"to {to!r}: a sip: target takes blind transfers only"))
        elif "sip:" in to or "tel:" in to or to.count("@") > 1:
            add(self.problem(f"to {to!r}: give a number, user@domain or sip:URI (one @)"))
        elif called_party_uri(to, "ivrbot.local") is None:
            add(self.problem(f"to {to!r} is not a callable number or user@domain"))
        if self.mode not in TRANSFER_MODES:
            add(self.problem(f"mode must be 'blind' or 'warm', not {self.mode!r}"))
        if self.say is not None and not self.say.strip():
            add(self.problem("say is empty: give a sorry prompt, or leave say out"))
        if self.announce is not None:
            if not self.announce.strip():
                add(self.problem("announce is empty: give words for the target, or leave "
                                 "announce out"))  # fmt: skip
            try:
                format_fields(self.announce)
            except ValueError as exc:
                add(self.problem(f"announce is not a valid format string ({exc}): write {{var}} "
                                 "for a call variable, {{ and }} for a brace"))  # fmt: skip
            if self.mode == "blind":
                add(self.problem("announce is only spoken in a warm transfer (mode='warm')",
                                 "warning"))  # fmt: skip
        elif self.mode == "warm":
            add(self.problem("a warm transfer announces the caller to the target: give "
                             "announce='...'"))  # fmt: skip
        return out


@dataclass
class Move(Step):
    """Move the call to another session of the bot's own identity (``phone.move()``).

    Every other session logged in as the flow's number rings, and the call goes to the
    one that answers: the caller stays connected and hears the new session from then on.
    The use case is handing calls between bot processes that serve the same number, e.g.
    draining a process before it stops: the process that takes the call runs its flow from
    the start (nothing of this call's state goes with it). A bot's own idle sessions answer
    too, so give the bot no spare sessions (``Bot(max_calls=1)``) when the call must leave
    the process. After a move the flow ends (record outcome 'moved'). When no other session
    takes it within ``timeout_s`` (or none is logged in), the flow goes on to ``fallback``
    (default ``next``, then the next step in order).
    """

    reaches_others = True

    next: str | None = None
    fallback: str | None = None
    timeout_s: float = 10.0
    colour: ClassVar[str] = "#a3e635"

    async def run(self, call: FlowCall) -> str | None:
        result = await call.move(self)
        return None if result.done else (self.fallback or self.next)

    def edges(self, following: str | None) -> list[Edge]:
        return fallback_edge(self.name, self.fallback or self.next or following)

    def summary(self) -> str:
        return "to another session of the number"

    def check(self, flow: Flow) -> list[Problem]:
        return hand_over_problems(self)


def fallback_edge(source: str, target: str | None) -> list[Edge]:
    """After a transfer or a move the flow ends: the only way on is when it fails."""
    return [Edge(source, target, "fallback")] if target else []


def hand_over_problems(step: Transfer | Move) -> list[Problem]:
    """What Transfer and Move check alike: the timeout, and a next that is never taken."""
    out = []
    if not step.timeout_s > 0:
        out.append(
            step.problem(f"timeout_s must be a positive number of seconds, not {step.timeout_s!r}")
        )
    if step.fallback and step.next and step.fallback != step.next:
        out.append(step.problem(
            f"{step.kind} never goes to next {step.next!r}: when it fails it goes to fallback "
            f"{step.fallback!r}, and after it the flow ends; leave one out", "warning"
        ))  # fmt: skip
    return out


# announcements -----------------------------------------------------------------------------
def format_fields(text: str) -> list[str]:
    """The ``{fields}`` of a format string (ValueError when it is not a valid one)."""
    return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]


class _Lenient(string.Formatter):
    """str.format that leaves a field it cannot fill empty (and lists it in ``missing``)."""

    def __init__(self) -> None:
        self.missing: list[str] = []

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, AttributeError, IndexError, TypeError):
            self.missing.append(field_name)
            return "", field_name


def fill(text: str, values: Mapping[str, Any]) -> str:
    """``text.format(**values)``; a variable that is not set is left out (and logged)."""
    formatter = _Lenient()
    try:
        out = formatter.vformat(text, (), values)
    except ValueError as exc:
        raise FlowError(f"prompt {text!r} is not a valid format string: {exc}") from None
    if formatter.missing:
        log.warning("prompt %r: no call variable %s", text, ", ".join(formatter.missing))
    return " ".join(out.split())


# running a transfer --------------------------------------------------------------------------
def phone_of(call: FlowCall) -> Phone:
    phone = call.call.phone
    if not isinstance(phone, Phone):
        raise FlowError("transfer, move and conference need the call's session to be a Phone")
    return phone


async def _until(clock: Clock, done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``done`` until it is true (True) or ``timeout_s`` has passed on ``clock`` (False)."""
    deadline = clock.monotonic() + timeout_s
    while not done():
        if clock.monotonic() >= deadline:
            return False
        await clock.sleep(POLL_S)
    return True


def keep_result(call: FlowCall, step: Step, result: TransferResult) -> TransferResult:
    call.vars[step.name] = result
    call.record.transfers.append({"step": step.name, **result.to_dict()})
    detail = {k: v for k, v in result.to_dict().items() if v not in ("", None)}
    call.note("transfer result", step=step.name, **detail)
    if result.done:
        call.handed_over(result.outcome)
    return result


async def transfer_call(call: FlowCall, step: Transfer) -> TransferResult:
    """Run a Transfer step; store and return its result."""
    phone = phone_of(call)
    first = call.call
    clock = call.clock
    announcement = fill(step.announce, call.vars) if step.mode == "warm" and step.announce else ""
    # synthesised before dialling: nobody waits for it
    prompt = (
        await call.bot.prompt(announcement, step.voice, flow=call.flow) if announcement else None
    )
    call.note("transfer", to=step.to, mode=step.mode)
    began = clock.monotonic()
    handed = _handed_out(call, step) if step.mode == "blind" else None
    if handed is not None:  # the far end transfers (a SIP caller: REFER to the PBX)
        outcome, reason, progress = await handed
        rang = clock.monotonic() - began
        result_out = TransferResult(step.to, step.mode, outcome, reason, rang, "", progress)
        return keep_result(call, step, result_out)
    if step.to.startswith(("sip:", "sips:")):
        reason = ("a sip: target is reached by a REFER: it needs a SIP caller, and the bot "
                  "in the gateway's process")  # fmt: skip
        return keep_result(call, step, TransferResult(step.to, step.mode, "failed", reason))
    second: Call | None = None

    def result(outcome: str, reason: str = "", ring_s: float | None = None) -> TransferResult:
        rang = clock.monotonic() - began if ring_s is None else ring_s
        return TransferResult(step.to, step.mode, outcome, reason, rang, announcement)

    try:
        try:
            second = dialled = await phone.add_call(step.to)
        except PhoneException as exc:
            await _give_up(clock, phone, first, _other(phone, first))
            return keep_result(call, step, result("failed", str(exc.error), 0.0))
        answered = await _until(clock, lambda: dialled.state not in _RINGING, step.timeout_s)
        ring_s = clock.monotonic() - began
        if dialled.state != CallState.CONNECTED:
            if answered:
                outcome, reason = _outcome(dialled), dialled.end_reason or str(dialled.state)
            else:
                outcome, reason = "no-answer", f"no answer within {step.timeout_s:g} s"
            await _give_up(clock, phone, first, dialled)
            return keep_result(call, step, result(outcome, reason, ring_s))
        if prompt is not None:
            await clock.sleep(ANNOUNCE_LEAD_S)
            playback = dialled.play(prompt.pcm, prompt.sample_rate, label=announcement)
            call.note("announce", text=announcement)
            await _until(clock, lambda: playback.done or dialled.state in ENDED, 120.0)
            if dialled.state in ENDED:
                await _give_up(clock, phone, first, dialled)
                reason = "the target hung up during the announcement"
                return keep_result(call, step, result(Outcome.BUSY, reason, ring_s))
        try:
            await phone.transfer()
        except PhoneException as exc:
            await _give_up(clock, phone, first, dialled)
            return keep_result(call, step, result("failed", str(exc.error), ring_s))
        if not await _until(clock, lambda: first.state in ENDED, SETTLE_S):
            await _give_up(clock, phone, first, dialled)
            return keep_result(call, step, result("failed", "the gateway did not transfer", ring_s))
        return keep_result(call, step, result("transferred", ring_s=ring_s))
    except asyncio.CancelledError:
        # The caller hung up (or the bot stops) - or the transfer is complete and the bot
        # already ended this flow: the record says which.
        if first.state == CallState.TRANSFERRED:
            keep_result(call, step, result("transferred"))
        else:
            keep_result(call, step, result("caller-hangup", first.end_reason))
            second = second or _other(phone, first)
            if second is not None:
                await _end(phone, second)
        raise


_RINGING = (CallState.CREATED, CallState.CONNECTING)


def _handed_out(call: FlowCall, step: Transfer) -> Awaitable[HandOff] | None:
    """The gateway's hand-over of this call to the far end (a REFER to the SIP caller's
    PBX), when the bot runs in the gateway's process and the far end takes ``step.to``."""
    gateway = call.bot.gateway
    session = gateway.sessions.get(call.call.phone.session_id or "") if gateway else None
    handle = session.calls.get(call.call.id or "") if session is not None else None
    return handle.hand_off(step.to) if handle is not None else None


def _other(phone: Phone, first: Call) -> Call | None:
    """The session's second call (one add_call made before it failed), if any."""
    return next((c for c in phone.calls if c is not first and c.state not in ENDED), None)


def _outcome(second: Call) -> str:
    outcome = of_reason(second.end_reason, answered=False)
    if outcome in REASONS:
        return outcome
    return Outcome.BUSY if second.state == CallState.REJECTED else Outcome.FAILED


async def _end(phone: Phone, second: Call) -> None:
    """End the second call, whatever its state (cancel while it rings, else hang up)."""
    try:
        if second.state == CallState.CONNECTING and phone.current_call is second:
            try:
                await phone.cancel()
            except PhoneException:  # answered meanwhile
                pass
        if second.state not in ENDED and phone.current_call is second:
            await phone.hangup()
    except PhoneException as exc:
        log.warning("%s: could not end the transfer call: %s", phone.name, exc)


async def _give_up(clock: Clock, phone: Phone, first: Call, second: Call | None) -> None:
    """End the second call and take the caller off hold."""
    if second is not None:
        await _end(phone, second)
    # ending the second call resumes the first by itself (it was held by add_call)
    if await _until(clock, lambda: first.state != CallState.HELD, SETTLE_S):
        return
    try:
        if phone.current_call is first:
            await phone.resume()
        else:
            await phone.switch_call()
    except PhoneException as exc:
        log.warning("%s: could not take the caller off hold: %s", phone.name, exc)


# running a move ------------------------------------------------------------------------------
async def move_call(call: FlowCall, step: Move) -> TransferResult:
    """Run a Move step; store and return its result."""
    phone = phone_of(call)
    first = call.call
    clock = call.clock
    began = clock.monotonic()
    target = phone.user_id or ""
    call.note("move")

    def result(outcome: str, reason: str = "") -> TransferResult:
        return TransferResult(target, "move", outcome, reason, clock.monotonic() - began)

    try:
        try:
            await phone.move()
        except PhoneException as exc:
            return keep_result(call, step, result("failed", str(exc.error)))
        settled = await _until(
            clock, lambda: first.state != CallState.MOVE_INITIATED, step.timeout_s
        )
        if first.state == CallState.MOVED:
            return keep_result(call, step, result("moved"))
        if settled:
            reason = "no other session of the number took the call"
        else:  # a move cannot be withdrawn: a late answer still takes the call
            reason = f"no other session answered within {step.timeout_s:g} s"
        return keep_result(call, step, result("failed", reason))
    except asyncio.CancelledError:
        outcome = "moved" if first.state == CallState.MOVED else "caller-hangup"
        keep_result(call, step, result(outcome))
        raise
