"""A flow's call with a fake caller: the real ``FlowCall.run`` loop and the real steps, no media.

The caller is a script of actions (:class:`Keys`, :class:`Speech`, :class:`Silence`,
:class:`HangUp`) taken in order by the questions that can take them; the steps that reach
past the call (Transfer, Move, Conference) take scripted results. Prompts are not
synthesised: each takes :data:`SECONDS_PER_WORD` a word on the call's virtual clock, and the
caller answers once a question's prompt has been said (barge-in is not played out).
:mod:`ivrbot.testing.flowtest` is the public face of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from ivrbot.flow.call import FlowCall
from ivrbot.flow.conference_steps import Conference, ConferenceResult
from ivrbot.flow.conference_steps import keep_result as keep_conference
from ivrbot.flow.flow import Flow
from ivrbot.flow.media_steps import Record, RecordResult, beep_pcm, keep_message
from ivrbot.flow.steps import Answer, Ask
from ivrbot.flow.transfer_steps import Move, Transfer, TransferResult, fill
from ivrbot.flow.transfer_steps import keep_result as keep_transfer
from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.listener import Listener
from ivrbot.media.tracks import Playback
from ivrbot.speech.turns import choice_heard
from ivrbot.testing.clock import VirtualClock

if TYPE_CHECKING:
    from ivrbot.flow.runner import Bot
    from ivrbot.phone.call import Call

SECONDS_PER_WORD = 0.4  # how long a prompt takes on the virtual clock, a word
RING_S = 2.0  # how long a scripted transfer's target rings before it answers or refuses
T = TypeVar("T")
TRANSFER_OUTCOMES = ("transferred", "no-answer", "busy", "rejected", "failed")


# the caller's actions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """Keypad keys pressed in one go (an entry of several digits, maybe its finish key)."""

    keys: str


@dataclass(frozen=True)
class Speech:
    """Words said (judged by the question's choices as the recogniser's result would be)."""

    words: str


@dataclass(frozen=True)
class Silence:
    """Nothing for ``seconds`` (None: no answer to the question being asked)."""

    seconds: float | None = None


@dataclass(frozen=True)
class HangUp:
    """The caller hangs up (when the flow next waits for them: a question or a Record)."""


Action = Keys | Speech | Silence | HangUp


class Unscripted(BaseException):
    """A step the script gives no result for (or cannot run without media): it stops the run
    (a BaseException, so the flow does not take it for its own error)."""


@dataclass
class Script:
    """What the fake caller does, and what the parties outside the call answer."""

    actions: deque[Action]
    transfers: deque[str]  # a Transfer's outcome each: 'transferred', 'no-answer', ...
    moves: deque[bool]  # a Move: whether another session takes the call
    conferences: deque[bool]  # a Conference: whether the room can be joined


class _Line:
    """The caller's side as the flow reads it (its address; no media)."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.id = "test-call"
        self.phone = None
        self.end_reason = ""  # the gateway's reason, once the call has ended
        self.direction = "incoming"  # the bot answered it


class _Bot:
    """What a FlowCall asks of its bot, on a test: the flow, the environment, the hang-up."""

    def __init__(self, flow: Flow, env: Mapping[str, str]) -> None:
        self.flow = flow
        self.env = env
        self.model = None
        self.gateway = None
        self.recordings = Path("recordings")
        self.hung_up = False

    def note(self, event: str, **detail: Any) -> None:
        pass

    async def hangup(self, flow_call: FlowCall) -> None:
        self.hung_up = True


class FakeCall(FlowCall):
    """A FlowCall whose caller follows a :class:`Script`, on a :class:`VirtualClock`."""

    def __init__(
        self, flow: Flow, script: Script, clock: VirtualClock, env: Mapping[str, str],
        caller: str, variables: Mapping[str, Any],
    ) -> None:  # fmt: skip
        self.fake_bot = _Bot(flow, env)
        self.line = _Line(caller)
        super().__init__(
            cast("Bot", self.fake_bot), cast("Call", self.line), Listener(clock), clock=clock
        )
        self.script = script
        self.vars.update(variables)
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.played: list[str] = []  # audio played (Play steps' files, a Record's beep)
        self.caller_hung_up = False

    def note(self, event: str, **detail: Any) -> None:
        self.notes.append((event, detail))

    # talking ------------------------------------------------------------------------------------
    async def say(self, text: str, voice: str | None = None, barge_in: bool = False) -> None:
        self.record.said(text, self.clock.time())
        self.note("prompt", text=text)
        await self.clock.sleep(SECONDS_PER_WORD * len(text.split()))

    async def play(
        self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "", barge_in: bool = False
    ) -> Playback:
        playback = Playback(np.zeros(0, np.int16), label=label)
        playback.stop()  # played at once: the kit sends no audio
        playback.interrupted = False
        self.played.append(label)
        self.note("play", audio=label, seconds=round(pcm.size / rate, 2))
        await self.clock.sleep(pcm.size / rate)
        return playback

    # listening ----------------------------------------------------------------------------------
    def _hang_up_now(self) -> None:
        """The caller hangs up (the script's next action): the flow's task is ended, as the
        bot's would be."""
        self.script.actions.popleft()
        self.caller_hung_up = True
        self.line.end_reason = "Call terminated"
        self.note("caller hung up")
        raise asyncio.CancelledError

    async def ask(self, step: Ask) -> Answer:
        await self.say(step.prompt, step.voice)
        return self.answered(step, await self._answer(step))

    async def _answer(self, step: Ask) -> Answer:
        """The caller's answer to ``step`` from the script (what the real Ask would take)."""
        actions = self.script.actions
        waited = 0.0
        while actions:
            action = actions[0]
            if isinstance(action, HangUp):
                self._hang_up_now()
            if isinstance(action, Silence):
                if action.seconds is None:
                    actions.popleft()
                    break
                if waited + action.seconds >= step.timeout_s:  # still silent at the timeout
                    actions[0] = Silence(waited + action.seconds - step.timeout_s)
                    break
                actions.popleft()
                waited += action.seconds
                await self.clock.sleep(action.seconds)
                continue
            if isinstance(action, Keys):
                if not step.digits:
                    break  # keys stay queued for the next question that takes keys
                actions.popleft()
                return await self._entry(step, action.keys)
            if isinstance(action, Speech):
                actions.popleft()
                if step.listens:
                    return _heard(step, action.words)
                self.note("not listening", step=step.name, words=action.words)
                # words said while nobody listens for speech are lost: keep waiting
        await self.clock.sleep(step.timeout_s - waited)
        return Answer("noinput")

    async def _entry(self, step: Ask, keys: str) -> Answer:
        """Digits for ``step`` from ``keys`` pressed in one go, as the real Ask collects them:
        up to ``digits`` (the finish key ends early, and after a full entry it is dropped);
        an entry left short ends after ``inter_digit_timeout_s``. Keys past the entry stay
        for the next question."""
        several = step.digits > 1 and bool(step.finish_key)
        digits, used = "", 0
        finished = False
        for key in keys:
            used += 1
            if several and key == step.finish_key:
                finished = True
                break
            digits += key
            if len(digits) >= step.digits:
                finished = True
                if several and keys[used : used + 1] == step.finish_key:
                    used += 1  # '123456#' for six digits: the '#' only ends the entry
                break
        rest = keys[used:]
        if rest:
            self.script.actions.appendleft(Keys(rest))
        if not finished:
            await self.clock.sleep(step.inter_digit_timeout_s)
        return Answer("dtmf", digits, method="rfc4733")

    # the steps that reach past the call ---------------------------------------------------------
    async def transfer(self, step: Transfer) -> TransferResult:
        outcome = _scripted(self.script.transfers, f"step {step.name!r} (Transfer to {step.to})",
                            "the target's answer", ".transfer_answers(True) (it answers) or "
                            ".transfer_answers(False) (no answer)")  # fmt: skip
        announcement = (
            fill(step.announce, self.vars) if step.mode == "warm" and step.announce else ""
        )
        self.note("transfer", to=step.to, mode=step.mode)
        ring = step.timeout_s if outcome == "no-answer" else 0.0 if outcome == "failed" else RING_S
        await self.clock.sleep(ring)
        reason = {"no-answer": f"no answer within {step.timeout_s:g} s", "busy": "User busy",
                  "rejected": "Call rejected", "failed": "scripted failure"}.get(outcome, "")  # fmt: skip
        if outcome != "transferred":
            announcement = ""
        result = TransferResult(step.to, step.mode, outcome, reason, ring, announcement)
        return keep_transfer(self, step, result)

    async def move(self, step: Move) -> TransferResult:
        moved = _scripted(self.script.moves, f"step {step.name!r} (Move)", "to know if another "
                          "session takes the call", ".move_answers(True) or .move_answers(False)")  # fmt: skip
        self.note("move")
        ring = RING_S if moved else step.timeout_s
        await self.clock.sleep(ring)
        reason = "" if moved else f"no other session answered within {step.timeout_s:g} s"
        target = self.flow.user_ids[0] if self.flow.user_ids else ""
        result = TransferResult(target, "move", "moved" if moved else "failed", reason, ring)
        return keep_transfer(self, step, result)

    async def conference(self, step: Conference) -> ConferenceResult:
        joins = _scripted(self.script.conferences, f"step {step.name!r} (Conference)", "to know "
                          "if the room can be joined", ".conference_joins(True) or "
                          ".conference_joins(False)")  # fmt: skip
        room = fill(step.room, self.vars)
        mode = "stay" if step.stay else "leave"
        self.note("conference", room=room, mode=mode)
        if not joins:
            result = ConferenceResult(room, mode, "failed", "scripted failure")
            return keep_conference(self, step, result)
        if step.announce:
            await self.say(fill(step.announce, self.vars))  # the room hears it, the caller too
        return keep_conference(self, step, ConferenceResult(room, mode, "joined"))

    async def record_message(self, step: Record) -> RecordResult:
        """A Record step: the prompt, the beep, then the caller's next action: words are a
        message (ended by the finish key when that comes next, else by silence; no file is
        written: its path is where it would be), silence or keys are none, a hang-up ends
        the call."""
        if step.prompt:
            await self.say(step.prompt, voice=step.voice)
        if step.beep:
            await self.play(beep_pcm(), WIRE_RATE, label="beep")
        actions = self.script.actions
        action = actions[0] if actions else Silence()
        if isinstance(action, HangUp):
            self._hang_up_now()
        if actions:
            actions.popleft()
        key = step.finish_key or ""
        if isinstance(action, Speech):
            seconds = min(step.max_s, SECONDS_PER_WORD * len(action.words.split()))
            ended_by, wait = "silence", step.silence_s
            if seconds >= step.max_s:
                ended_by, wait = "max-length", 0.0
            elif actions and isinstance(actions[0], Keys) and key and key in actions[0].keys:
                actions.popleft()
                ended_by, wait = "finish-key", 0.0
            await self.clock.sleep(seconds + wait)
            name = f"{self.record.id}-{step.name}.{step.fmt}"
            path = self.fake_bot.recordings / self.flow.name / name
            return keep_message(self, step, RecordResult("recorded", str(path), seconds, ended_by))
        finish = isinstance(action, Keys) and bool(key) and key in action.keys
        if not finish:
            await self.clock.sleep(step.silence_s)
        ended_by = "finish-key" if finish else "no-input"
        return keep_message(self, step, RecordResult("noinput", None, 0.0, ended_by))

    def recording_path(self, fmt: str = "wav", label: str = "") -> Path:
        raise Unscripted(
            "the flow records the call (start_recording / recording_path): the test kit has "
            "no audio to record; test that part over real media (ivrbot flows test)"
        )


def _scripted(answers: deque[T], step: str, need: str, add: str) -> T:
    """The next scripted answer for ``step``; none: the run stops, saying what to add."""
    if not answers:
        raise Unscripted(f"{step} needs {need}: add {add}")
    return answers.popleft()


def _heard(step: Ask, words: str) -> Answer:
    """What the recogniser would give for ``words`` at ``step``: the transcript for a
    free-form Ask; else one of its choices (the earliest in the words), or a no-match."""
    text = " ".join(words.split())
    if step.free_form:
        return Answer("speech", text, text, 1.0, "asr") if text else Answer("nomatch", method="asr")
    choice = choice_heard(text, step.choice_map, SECONDS_PER_WORD * len(text.split()))
    if choice is None:
        return Answer("nomatch", "", text, 1.0, "asr")
    return Answer("speech", choice, text, 1.0, "asr")
