"""FlowCall: one call running through a flow. Steps talk to the caller through it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ivrbot import call_events
from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.flow.failure import failure_site, step_source
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.steps import Answer, Ask
from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.listener import Listener
from ivrbot.media.recorder import FORMAT_SUFFIX, Recorder, call_sources
from ivrbot.media.tracks import Playback
from ivrbot.numbers import e164
from ivrbot.outcomes import Outcome, of_flow
from ivrbot.phone.call import Call
from ivrbot.speech.asr import SpeechTurn
from ivrbot.speech.recognizer_pool import shared_pool
from ivrbot.speech.turns import FreeFormTurn, GrammarTurn

if TYPE_CHECKING:
    from ivrbot.flow.conference_steps import Conference, ConferenceResult
    from ivrbot.flow.media_steps import Record, RecordResult
    from ivrbot.flow.runner import Bot
    from ivrbot.flow.transfer_steps import Move, Transfer, TransferResult

log = logging.getLogger(__name__)
MAX_STEPS = 1000  # a flow that loops forever is ended, not left running


class FlowCall:
    """The call as a flow sees it: ``say``, ``ask``, ``hangup``, ``vars`` and its record.

    ``clock``: what the call reads the time from and pauses on (``sleep``); the real one
    unless a test kit gives it a virtual one."""

    def __init__(self, bot: Bot, call: Call, listener: Listener, clock: Clock = REAL_CLOCK) -> None:
        self.bot = bot
        self.flow: Flow = bot.flow  # a call finishes on the version it started with
        self.call = call
        self.listener = listener
        self.clock = clock
        self.vars: dict[str, Any] = {}
        direction = "outbound" if call.direction == "outgoing" else "inbound"
        self.record = FlowRecord(self.flow.name, e164(call.peer), direction=direction,
                                 number=e164(self.flow.user_ids[0]),
                                 started_at=clock.time())  # fmt: skip
        self.hung_up = False
        self.done = False  # the call has ended and its record is complete
        self.last_answer: Answer | None = None
        self.playbacks: list[Playback] = []  # every prompt played, with its start and end times
        self.recorder: Recorder | None = None  # the call's recording (start_recording)
        # An Ask that took all its digits: its finish key, if pressed next (before the
        # deadline, clock.monotonic()), ends that entry and is not the next Ask's answer.
        self._trailing_key: tuple[str, float] | None = None

    @property
    def caller(self) -> str:
        return self.call.peer

    @property
    def env(self) -> Mapping[str, str]:
        """The environment the flow runs in (``Settings.flow_env``: the process's, with a
        scenario's ``[env]`` table over it); flows read their own variables here."""
        return self.bot.env

    def note(self, event: str, **detail: Any) -> None:
        self.bot.note(event, **detail)
        call_events.flow_note(self, event, detail)  # the operator's log line, latencies

    # running the graph ---------------------------------------------------------------------
    async def run(self) -> None:
        flow = self.flow
        name: str | None = flow.start
        failed = False
        try:
            for _ in range(MAX_STEPS):
                if name is None or self.hung_up:
                    break
                current = name
                try:
                    name = await self._run_step(current)
                except Exception as exc:
                    self._failed(current, exc)
                    if failed or self.hung_up:
                        break  # the error route failed too, or the caller is gone
                    failed = True
                    await self._apologise()
                    name = flow.on_error  # None: hang up
            if not self.hung_up:
                await self.hangup()
            self.record.outcome = self.outcome_now("")
        except asyncio.CancelledError:  # the caller hung up (or the gateway ended the call)
            self.record.outcome = self.outcome_now(self.call.end_reason or "Call terminated")
            raise
        except Exception as exc:  # hanging up failed: the call is gone anyway
            log.warning("flow %s: could not end the call cleanly: %s", flow.name, exc)
        finally:
            await self._stop_recording_quietly()
            self.record.ended_at = self.clock.time()

    async def _run_step(self, name: str) -> str | None:
        """Run step ``name``; the name of the step to run next."""
        flow = self.flow
        step = flow.steps[name]
        self.record.path.append(name)
        self.note("step", step=name)
        chosen = await step.run(self)
        if chosen is not None and chosen not in flow.steps:
            raise FlowError(
                f"{step_source(step)}: step {name!r} returned {chosen!r}, which is not a step "
                f"of flow {flow.name!r}"
            )
        return chosen if chosen is not None else flow.next_after(name)

    def _failed(self, name: str, exc: Exception) -> None:
        """A step raised: on record (with the flow file and line) and in the log, one line
        (the traceback only at debug level)."""
        step = self.flow.steps[name]
        where = failure_site(exc, self.flow.source) or step_source(step) or self.flow.source
        message = str(exc) if isinstance(exc, FlowError) else f"{type(exc).__name__}: {exc}"
        if where and not message.startswith(where):
            message = f"{message} ({where})"
        self.record.outcome, self.record.error = Outcome.ERROR, f"step {name}: {message}"
        log.error("flow %s failed in step %s: %s", self.flow.name, name, message)
        log.debug("flow %s: the failure", self.flow.name, exc_info=exc)
        self.note("error", step=name, error=message)

    async def _apologise(self) -> None:
        """Tell the caller something went wrong (Flow(apology=...)) before going on."""
        if self.hung_up or not self.flow.apology:
            return
        try:
            await self.say(self.flow.apology)
        except Exception as exc:
            log.warning("flow %s: the apology could not be played: %s", self.flow.name, exc)

    # talking ----------------------------------------------------------------------------------
    async def play_prompt(self, text: str, voice: str | None = None) -> Playback:
        """Start speaking ``text``; returns the playback (await it, or stop it)."""
        prompt = await self.bot.prompt(text, voice, flow=self.flow)
        playback = self.call.play(prompt.pcm, prompt.sample_rate, label=text)
        self.playbacks.append(playback)
        self.record.said(text, self.clock.time())
        self.note("prompt", text=text)
        return playback

    async def say(self, text: str, voice: str | None = None, barge_in: bool = False) -> None:
        playback = await self.play_prompt(text, voice)
        await self._finish_playing(playback, barge_in)

    async def play(
        self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "", barge_in: bool = False
    ) -> Playback:
        """Play audio (int16 mono at ``rate``) to the caller and wait until it has been sent;
        with ``barge_in`` a keypad press stops it (the press is kept for the next Ask)."""
        playback = self.call.play(pcm, rate, label=label)
        self.playbacks.append(playback)
        self.note("play", audio=label, seconds=round(playback.duration_s, 2))
        await self._finish_playing(playback, barge_in)
        return playback

    async def _finish_playing(self, playback: Playback, barge_in: bool) -> None:
        if not barge_in:
            await playback
            return
        press = asyncio.ensure_future(self._peek_press())
        await asyncio.wait(
            {press, asyncio.ensure_future(_wait(playback))}, return_when="FIRST_COMPLETED"
        )
        press.cancel()
        playback.stop()

    async def _peek_press(self) -> None:
        digit, method = await self._next_press()
        self.listener.presses.put_nowait((digit, method))  # the next Ask takes it (type-ahead)

    async def _next_press(self) -> tuple[str, str]:
        """The next keypad press, skipping a finish key that only ended a full entry
        ('123456#' for six digits: the '#' is not the answer to the next question). Such a
        key is the first press after the entry, pressed before the next question began or
        within the entry's inter-digit timeout."""
        presses = self.listener.presses
        trailing, self._trailing_key = self._trailing_key, None
        if trailing is not None:
            key, deadline = trailing
            try:
                if presses.empty():
                    wait = max(0.0, deadline - self.clock.monotonic())
                    press = await self.clock.wait_for(presses.get(), wait)
                else:
                    press = presses.get_nowait()
            except TimeoutError:
                pass
            else:
                if press[0] != key:
                    return press
                self.note("finish key after a full entry", key=key)
        return await presses.get()

    async def give_up(self, outcome: str) -> None:
        """A Menu or Ask got no usable answer after its retries and has no step for that:
        the caller hears ``Flow(give_up=...)`` and the bot hangs up; the record's outcome is
        ``outcome`` ('no-input' | 'no-match')."""
        self.record.outcome = outcome
        self.note("give up", step=self.record.path[-1] if self.record.path else None,
                  outcome=outcome)  # fmt: skip
        if self.flow.give_up and not self.hung_up:
            await self.say(self.flow.give_up)
        await self.hangup()

    async def sleep(self, seconds: float) -> None:
        """Pause the flow for ``seconds`` on the call's clock (a Python step's wait: in the
        test kit it passes in no real time, where ``asyncio.sleep`` would really wait)."""
        await self.clock.sleep(seconds)

    # reaching past the call: the steps that need the network or media run through these
    # (the test kit scripts their results)
    async def transfer(self, step: Transfer) -> TransferResult:
        """Run a Transfer step's hand-over (see :func:`~ivrbot.flow.transfer_steps.transfer_call`)."""
        from ivrbot.flow.transfer_steps import transfer_call

        return await transfer_call(self, step)

    async def move(self, step: Move) -> TransferResult:
        """Run a Move step (see :func:`~ivrbot.flow.transfer_steps.move_call`)."""
        from ivrbot.flow.transfer_steps import move_call

        return await move_call(self, step)

    async def conference(self, step: Conference) -> ConferenceResult:
        """Run a Conference step's join (see :func:`~ivrbot.flow.conference_steps.join_room`)."""
        from ivrbot.flow.conference_steps import join_room

        return await join_room(self, step)

    async def record_message(self, step: Record) -> RecordResult:
        """Run a Record step (see :func:`~ivrbot.flow.media_steps.record_message`)."""
        from ivrbot.flow.media_steps import record_message

        return await record_message(self, step)

    def handed_over(self, outcome: str) -> None:
        """The call left the bot (a Transfer or Move step): the flow ends with ``outcome``."""
        self.hung_up = True
        self.record.outcome = outcome
        self.note(outcome)

    def outcome_now(self, ended: str) -> str:
        """The call's outcome (README "Outcomes") if it ended now, answered: ``ended`` is the
        gateway's reason when the other party or the gateway ends it, '' when the bot does.
        The flow record and the gateway's call-end line both take it from here."""
        return of_flow(self.record.outcome, self.vars, bool(self.record.path), ended)

    async def hangup(self) -> None:
        if not self.hung_up:
            self.hung_up = True
            self.record.outcome = self.outcome_now("")
            self.note("hangup")
            await self.bot.hangup(self)

    # recording ---------------------------------------------------------------------------------
    def recording_path(self, fmt: str = "wav", label: str = "") -> Path:
        """A new file for this call: <recordings>/<flow>/<record id>[-label].<fmt> (the folder:
        ``Settings.recordings``, IVRBOT_RECORDINGS)."""
        if fmt not in FORMAT_SUFFIX:
            raise FlowError(f"recording format {fmt!r}: use one of {', '.join(FORMAT_SUFFIX)}")
        return _new_file(
            self.bot.recordings / self.flow.name, f"{self.record.id}{'-' if label else ''}{label}",
            FORMAT_SUFFIX[fmt],
        )  # fmt: skip

    def add_recording(self, path: str | os.PathLike[str]) -> None:
        """List a recording file in the call's record."""
        self.record.recordings.append(str(path))

    async def start_recording(
        self, path: str | os.PathLike[str] | None = None, fmt: str = "wav", mix: bool = False
    ) -> Path:
        """Record both directions of the call until :meth:`stop_recording` or its end.

        A 2-channel file (left: the caller, right: the bot), or one mono mix with ``mix``.
        ``path``'s suffix (.wav, .ogg, .opus) decides the format; without a path the file is
        <IVRBOT_RECORDINGS, default ./recordings>/<flow>/<record id>.<fmt>."""
        if self.recorder is not None:
            raise FlowError(f"the call is already recorded to {self.recorder.path}")
        if path is None:
            target = self.recording_path(fmt)
        else:
            target = Path(path)
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        self.recorder = Recorder(target, call_sources(self.call), mix=mix).start()
        self.add_recording(target)
        self.note("recording started", path=str(target))
        return target

    async def stop_recording(self) -> Path | None:
        """Stop the call's recording and complete its file (None when not recording)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        path = await recorder.stop()
        self.note("recording stopped", path=str(path), seconds=round(recorder.duration_s, 2))
        return path

    async def _stop_recording_quietly(self) -> None:
        try:
            await self.stop_recording()
        except OSError:
            log.exception("the recording of a %s call failed", self.flow.name)

    # listening ---------------------------------------------------------------------------------
    async def ask(self, step: Ask) -> Answer:
        """Prompt, then wait for digits or a spoken choice (barge-in stops the prompt).

        The no-input timeout runs from the end of the prompt, and not while the call is on
        hold (``listener.hold``): time on hold is not the caller's time to answer."""
        playback = await self.play_prompt(step.prompt, step.voice)
        first_press = asyncio.ensure_future(self._next_press()) if step.digits else None
        speech: asyncio.Future[Answer] | None = None
        turn = self._turn(step, playback)
        if turn is not None:
            speech = asyncio.ensure_future(self._recognise(turn))
        prompt_done = asyncio.ensure_future(_wait(playback))
        no_input: asyncio.Future[None] | None = None
        timed = False  # the no-input timer was started (it starts once)
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {
                    t for t in (first_press, speech, no_input) if t is not None
                }
                if not prompt_done.done():
                    waiting.add(prompt_done)
                done, _ = await asyncio.wait(waiting, return_when="FIRST_COMPLETED")
                if first_press is not None and first_press in done:
                    if step.barges("dtmf"):
                        playback.stop()
                    answer = await self._collect_digits(step, first_press.result())
                    break
                if speech is not None and speech in done:
                    answer = speech.result()
                    break
                if prompt_done in done and not timed:
                    timed = True
                    no_input = asyncio.ensure_future(self.listener.hold.sleep(step.timeout_s))
                    continue
                if no_input is not None and no_input in done:
                    no_input = None
                    if turn is not None and turn.speech_started():
                        # look again soon: a sound the turn then finds is not speech (music,
                        # tones, noise) is forgotten, and then the time is up
                        no_input = asyncio.ensure_future(self.listener.hold.sleep(0.1))
                        continue
                    answer = Answer("noinput")
                    break
        finally:
            self.listener.listening_for_speech = False
            for task in (first_press, speech, prompt_done, no_input):
                if task is not None and not task.done():
                    task.cancel()
            if turn is not None:
                turn.close()  # a free-form recogniser goes back to its pool
        if step.barge_in is False:
            await playback
        playback.stop()
        return self.answered(step, answer)

    def answered(self, step: Ask, answer: Answer) -> Answer:
        """``answer`` as ``step`` takes it (judged), kept as the last answer, on record and
        noted (as shown: a secret masked; ``call.vars`` keep the value)."""
        answer = step.judge(answer)
        self.last_answer = answer
        shown = answer.shown(step.secret)  # records, notes, logs: as shown (vars: the value)
        self.record.inputs.append({"step": step.name, **shown})
        detail = {k: v for k, v in shown.items() if v not in ("", None, False)}
        if answer.outcome == "dtmf":
            detail.pop("confidence", None)
        self.note("input", step=step.name, **detail)
        return answer

    async def _collect_digits(self, step: Ask, first: tuple[str, str]) -> Answer:
        digits, method = "", first[1]
        press: tuple[str, str] | None = first
        while press is not None:
            digit = press[0]
            if digit == step.finish_key and step.digits > 1:
                break
            digits += digit
            if len(digits) >= step.digits:
                if step.finish_key and step.digits > 1:
                    deadline = self.clock.monotonic() + step.inter_digit_timeout_s
                    self._trailing_key = (step.finish_key, deadline)
                break
            try:  # the inter-digit timeout, like the no-input one, pauses while held
                press = await self.listener.hold.wait_for(
                    self.listener.presses.get(), step.inter_digit_timeout_s
                )
            except TimeoutError:
                press = None
        return Answer("dtmf", digits, method=method)

    def _turn(self, step: Ask, playback: Playback) -> SpeechTurn | None:
        """The listening turn of an Ask (None when it takes no speech or has no model)."""
        model = self.bot.model
        if model is None or not step.listens:
            return None

        def speech_started() -> None:  # per 10 ms of audio, not per recogniser batch
            if step.barges("speech") and not playback.done:
                playback.stop()
                self.note("barge-in")

        no_input_ms = int((playback.duration_s + step.timeout_s + 60) * 1000)
        silence_ms, complete_ms = speech_endpoints_ms(step, self.flow)
        if step.free_form:
            return FreeFormTurn(
                model, silence_ms=silence_ms, no_input_ms=no_input_ms,
                pool=shared_pool(model), on_speech_start=speech_started,
            )  # fmt: skip
        return GrammarTurn(
            model, step.choice_map, silence_ms=silence_ms, no_input_ms=no_input_ms,
            complete_silence_ms=complete_ms, on_speech_start=speech_started,
        )  # fmt: skip

    async def _recognise(self, turn: SpeechTurn) -> Answer:
        speech = self.listener.speech
        while not speech.empty():
            speech.get_nowait()
        self.listener.listening_for_speech = True
        while True:
            pcm = await speech.get()
            fed_at = time.monotonic()  # the recogniser's real latency (a metric)
            result = await turn.feed(pcm)
            if result is None:
                continue
            call_events.speech_recognised(result.outcome, time.monotonic() - fed_at)
            if result.outcome == "match":
                value = result.choice if result.choice is not None else result.text
                return Answer("speech", value, result.text, result.confidence, "asr")
            return Answer(result.outcome, "", result.text, result.confidence, "asr")


def speech_endpoints_ms(step: Ask, flow: Flow) -> tuple[int, int | None]:
    """An Ask's speech turn ends after (``silence_ms``, ``complete_silence_ms``) of silence:
    its incomplete and complete timeouts (the flow's unless the Ask sets them) in ms; the
    complete one is None when it would not end a turn sooner (it is not shorter than the
    incomplete one, or the Ask takes free-form speech, which has no whole choice)."""
    complete_s, incomplete_s = step.speech_timeouts(flow)
    silence_ms = max(10, round(incomplete_s * 1000))
    complete_ms = max(10, round(complete_s * 1000))
    if step.free_form or complete_ms >= silence_ms:
        return silence_ms, None
    return silence_ms, complete_ms


async def _wait(playback: Playback) -> None:
    await playback


def _new_file(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem.suffix`` (made absolute), or ``stem-2``... when that exists."""
    folder = Path(os.path.abspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path
