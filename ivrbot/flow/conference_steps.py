"""The Conference step: bridge the caller into a conference room with other callers.

The bot hosts the room (see rooms.py) and merges the caller's call into it inside the
gateway (``Phone.merge_call``): the caller's audio goes into the room's mix on the call it
already has. The bot then leaves the call (default) or stays in the room with the caller.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ivrbot.errors import PhoneException
from ivrbot.flow.rooms import RoomError
from ivrbot.flow.steps import Edge, Problem, Step
from ivrbot.flow.transfer_steps import WithFallback, fill, format_fields, phone_of
from ivrbot.phone.call import ENDED

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.flow import Flow

log = logging.getLogger(__name__)
MERGED = "Call merged into a conference"  # the gateway's reason when the bot's leg leaves


@dataclass(frozen=True)
class ConferenceResult:
    """What a Conference step stored in ``call.vars[name]`` and the call's record."""

    room: str
    mode: str  # 'leave' | 'stay'
    outcome: str  # 'joined' | 'failed' | 'caller-hangup'
    reason: str = ""  # why it failed
    others: tuple[str, ...] = ()  # who was in the room when the caller joined

    @property
    def done(self) -> bool:
        return self.outcome == "joined"

    def to_dict(self) -> dict[str, Any]:
        return {
            "room": self.room,
            "mode": self.mode,
            "outcome": self.outcome,
            "reason": self.reason,
            "others": list(self.others),
        }


@dataclass
class Conference(WithFallback, Step):
    """Put the caller in conference room ``room`` with everyone else the bot put there.

    ``room`` is a name (``str.format`` with the call's variables: ``"room-{pin}"``); callers
    sent to the same name hear each other. ``announce`` (also formatted) is said to the
    whole room, the newcomer included, as the caller joins. With ``stay=False`` (default)
    the bot leaves the call once the caller is in the room: the flow ends (record outcome
    'conferenced'), the caller stays until they hang up or the room closes. With
    ``stay=True`` the bot stays in the room on the caller's call and the flow goes on to
    ``next``: what it says from then on everyone in the room hears, and what it hears is
    the whole room; the caller's keypad presses still reach it (an Ask takes them); when
    its flow hangs up, the bot leaves and the caller stays.
    When the room cannot be joined the caller hears ``say`` (if given) and the flow goes to
    ``fallback`` (default ``next``, then the next step in order). ``call.vars[name]`` holds
    a :class:`ConferenceResult`; the record lists it under ``conferences``.
    """

    reaches_others = True

    room: str
    announce: str | None = None
    stay: bool = False
    next: str | None = None
    fallback: str | None = None
    say: str | None = None
    voice: str | None = None
    colour: ClassVar[str] = "#a7f3d0"

    async def run(self, call: FlowCall) -> str | None:
        result = await call.conference(self)
        if result.done:
            return self.next if self.stay else None
        if result.outcome == "failed" and self.say:
            await call.say(self.say, voice=self.voice)
        return self.fallback or self.next

    def edges(self, following: str | None) -> list[Edge]:
        # leaving the caller in the room ends the flow; staying goes on to next
        nxt = self.next or following
        out = [Edge(self.name, nxt, "next")] if self.stay and nxt else []
        failed = self.fallback or nxt
        if failed and not (self.stay and failed == nxt):
            out.append(Edge(self.name, failed, "fallback"))
        return out

    def summary(self) -> str:
        return f"room {self.room}" + (" (bot stays)" if self.stay else "")

    def check(self, flow: Flow) -> list[Problem]:
        out: list[Problem] = []
        for label, text in (("room", self.room), ("announce", self.announce), ("say", self.say)):
            if text is None:
                continue
            if not isinstance(text, str) or not text.strip():
                out.append(self.problem(f"{label} is empty: give words, or leave it out"
                           if label != "room" else "Conference has no room name"))  # fmt: skip
                continue
            try:
                format_fields(text)
            except ValueError as exc:
                out.append(self.problem(f"{label} is not a valid format string ({exc}): write "
                                        "{var} for a call variable"))  # fmt: skip
        return out


def keep_result(call: FlowCall, step: Conference, result: ConferenceResult) -> ConferenceResult:
    call.vars[step.name] = result
    call.record.conferences.append({"step": step.name, **result.to_dict()})
    call.note("conference result", step=step.name, room=result.room, outcome=result.outcome)
    if result.done:
        call.record.outcome = "conferenced"
        if not step.stay:
            call.handed_over("conferenced")
    return result


async def join_room(call: FlowCall, step: Conference) -> ConferenceResult:
    """Run a Conference step; store and return its result."""
    phone = phone_of(call)
    mode = "stay" if step.stay else "leave"
    name = fill(step.room, call.vars)
    text = fill(step.announce, call.vars) if step.announce else ""
    prompt = await call.bot.prompt(text, step.voice, flow=call.flow) if text else None
    call.note("conference", room=name, mode=mode)
    try:
        room = await call.bot.rooms.enter(name)
    except RoomError as exc:
        log.warning("%s: %s", call.flow.name, exc)
        return keep_result(call, step, ConferenceResult(name, mode, "failed", str(exc)))
    others = tuple(room.members)
    joined = ConferenceResult(name, mode, "joined", others=others)
    merged = False

    def welcome() -> None:
        if prompt is not None and room.open:
            room.announce(prompt, text)
            call.record.said(text, call.clock.time())  # the caller hears it with the room

    try:
        await phone.merge_call(room.id, stay=step.stay)
        merged = True
    except PhoneException as exc:
        outcome = "caller-hangup" if call.call.state in ENDED else "failed"
        return keep_result(call, step, ConferenceResult(name, mode, outcome, str(exc.error)))
    except asyncio.CancelledError:
        # The bot's leg left the call as the merge took effect (its end can come before the
        # gateway's answer) - or the caller hung up meanwhile: the record says which.
        merged = call.call.end_reason == MERGED
        if merged:
            welcome()
            keep_result(call, step, joined)
        else:
            keep_result(call, step, ConferenceResult(name, mode, "caller-hangup"))
        raise
    finally:
        call.bot.rooms.entered(room, merged)
    welcome()
    return keep_result(call, step, joined)
