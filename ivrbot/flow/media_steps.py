"""Steps that play and record audio files: Play (any file PyAV reads) and Record (voicemail)."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ivrbot.flow.steps import DTMF_KEYS, Edge, Problem, Step
from ivrbot.media.frames import WIRE_RATE, rms_dbfs
from ivrbot.media.recorder import (
    FORMAT_SUFFIX,
    Recorder,
    keypad_tone_start,
    leg_source,
    watched,
)
from ivrbot.media.sinks import read_audio
from ivrbot.media.vad import NoiseFloor, power_dbfs

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.flow import Flow

log = logging.getLogger(__name__)

BEEP_HZ = 1000.0
BEEP_S = 0.3
BEEP_DBFS = -12.0
SPEECH_DB = -45.0  # a 20 ms frame louder than this (and than the noise floor + 12 dB) is speech
SPEECH_FRAMES = 3  # consecutive loud frames (60 ms) that start speech: a click does not
PRE_ROLL_S = 0.2  # kept before the first speech
POST_ROLL_S = 0.3  # kept after the last speech
POLL_S = 0.05


def play_file(path: str | os.PathLike[str], flow: Flow | None) -> Path:
    """Where a Play step's file is: absolute as given; relative to the flow module's folder
    (to the current folder for a flow not loaded from a file)."""
    file = Path(path).expanduser()
    if file.is_absolute() or flow is None or not flow.source:
        return file
    return Path(flow.source).parent / file


@dataclass
class Play(Step):
    """Play an audio file: WAV, or anything PyAV (FFmpeg) decodes (Ogg/Opus, MP3, FLAC...).

    A relative path is relative to the flow module's folder. Decoded once (48 kHz mono)
    and cached until the file changes. ``barge_in``: a keypad press stops it (the press is
    kept for the next Ask). A file that is missing or cannot be decoded is a check error.
    """

    path: str | os.PathLike[str]
    next: str | None = None
    barge_in: bool = False
    colour: ClassVar[str] = "#22d3ee"

    async def run(self, call: FlowCall) -> str | None:
        file = play_file(self.path, call.flow)
        pcm = await asyncio.to_thread(read_audio, file, WIRE_RATE)
        await call.play(pcm, WIRE_RATE, label=file.name, barge_in=self.barge_in)
        return self.next

    def summary(self) -> str:
        return Path(self.path).name

    def check(self, flow: Flow) -> list[Problem]:
        """The file must exist and decode (which also caches it for the first call)."""
        file = play_file(self.path, flow)
        try:
            read_audio(file)
        except FileNotFoundError:
            return [self.problem(f"Play file {str(self.path)!r} not found ({file})")]
        except (OSError, ValueError) as exc:
            return [self.problem(f"Play file {str(self.path)!r} cannot be played: {exc}")]
        return []


@dataclass(frozen=True)
class RecordResult:
    """What a Record step stored in ``call.vars[name]``."""

    outcome: str  # 'recorded' | 'noinput' (nothing said: no file is kept)
    path: str | None = None
    duration_s: float = 0.0
    ended_by: str = ""  # 'finish-key' | 'silence' | 'max-length' | 'hangup' | 'no-input'

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "path": self.path,
            "duration_s": round(self.duration_s, 2),
            "ended_by": self.ended_by,
        }


@dataclass
class Record(Step):
    """Voicemail: an optional prompt, a beep, then record what the caller says.

    Recording ends at ``max_s`` of audio, at ``finish_key`` (not kept in the file: an
    in-band tone is cut where it starts), after ``silence_s`` of silence following speech,
    or when the caller hangs up (the message is kept). Silence before the first speech and
    after the last is trimmed to a fraction of a second. The file goes to the flow's
    recordings folder (``fmt``: 'wav', 'ogg' or 'opus'); ``call.vars[name]`` holds a
    :class:`RecordResult` and the call's record lists the file. Nothing said before
    ``silence_s`` (or the finish key, or the end): ``no_input`` (default ``next``).
    """

    prompt: str | None = None
    max_s: float = 60.0
    finish_key: str | None = "#"
    beep: bool = True
    silence_s: float = 5.0
    next: str | None = None
    no_input: str | None = None
    fmt: str = "wav"
    voice: str | None = None
    colour: ClassVar[str] = "#f5d0fe"

    async def run(self, call: FlowCall) -> str | None:
        result = await call.record_message(self)
        if result.outcome == "noinput" and self.no_input:
            return self.no_input
        return self.next

    def edges(self, following: str | None) -> list[Edge]:
        out = super().edges(following)
        nxt = self.next or following
        if self.no_input and self.no_input != nxt:
            out.append(Edge(self.name, self.no_input, "no input"))
        return out

    def summary(self) -> str:
        ends = f", {self.finish_key} ends" if self.finish_key else ""
        return f"<= {self.max_s:g} s{ends}" + (f": {self.prompt}" if self.prompt else "")

    def check(self, flow: Flow) -> list[Problem]:
        wrong = []
        if self.prompt is not None and not self.prompt.strip():
            wrong.append("Record's prompt is empty: give words to say, or leave prompt out")
        if not self.max_s > 0:
            wrong.append(f"max_s must be a positive number of seconds, not {self.max_s!r}")
        if not self.silence_s > 0:
            wrong.append(f"silence_s must be a positive number of seconds, not {self.silence_s!r}")
        key = self.finish_key
        if key and (len(key) != 1 or key not in DTMF_KEYS):
            wrong.append(f"finish_key {key!r} is not a keypad key (0-9 * # A-D; '' for none)")
        if self.fmt not in FORMAT_SUFFIX:
            wrong.append(f"fmt {self.fmt!r} is not a recording format ({', '.join(FORMAT_SUFFIX)})")
        return [self.problem(message) for message in wrong]

    def prompt_texts(self) -> list[str]:
        return [self.prompt] if self.prompt else []


def beep_pcm(rate: int = WIRE_RATE) -> np.ndarray:
    """The record beep: 1000 Hz for 300 ms, with 5 ms ramps (no clicks)."""
    n = int(BEEP_S * rate)
    t = np.arange(n) / rate
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * rate))
    amplitude = 32767 * 10 ** (BEEP_DBFS / 20)
    return (amplitude * ramp * np.sin(2 * np.pi * BEEP_HZ * t)).astype(np.int16)


class SpeechGate:
    """Is the caller talking? Frame energy against max(``SPEECH_DB``, noise floor + 12 dB).

    Positions are in samples of what was fed (``samples`` so far)."""

    def __init__(self, rate: int = WIRE_RATE) -> None:
        self.rate = rate
        self.samples = 0
        self.speech_start: int | None = None
        self.last_loud = 0  # end of the last loud frame
        self.threshold = SPEECH_DB
        self._run = 0
        self._floor = NoiseFloor(250)  # 5 s of frames

    @property
    def started(self) -> bool:
        return self.speech_start is not None

    def feed(self, pcm: np.ndarray) -> None:
        level = rms_dbfs(pcm)
        self.threshold = max(SPEECH_DB, self._floor.update(level) + 12.0)
        self.samples += pcm.size
        if level <= self.threshold:
            self._run = 0
            return
        self._run += 1
        self.last_loud = self.samples
        if self.speech_start is None and self._run >= SPEECH_FRAMES:
            self.speech_start = self.samples - self._run * pcm.size

    @property
    def quiet_s(self) -> float:
        return (self.samples - self.last_loud) / self.rate

    def loud_frames(self, pcm: np.ndarray, frame: int) -> np.ndarray:
        """Indexes of the loud ``frame``-sized blocks of ``pcm``."""
        usable = pcm.size - pcm.size % frame
        if usable == 0:
            return np.zeros(0, np.intp)
        levels = power_dbfs(pcm[:usable].reshape(-1, frame))
        return np.flatnonzero(levels > self.threshold)


async def record_message(call: FlowCall, step: Record) -> RecordResult:
    """Run a Record step: prompt, beep, record until it ends; store and return the result."""
    if step.prompt:
        await call.say(step.prompt, voice=step.voice)
    if step.beep:
        await call.play(beep_pcm(), WIRE_RATE, label="beep")
    call.listener.clear()  # keys pressed before the beep do not end the message
    gate = SpeechGate(WIRE_RATE)
    path = call.recording_path(step.fmt, step.name)
    source = watched(leg_source(call.call), gate.feed)
    recorder = Recorder(path, [source], holdback_s=step.silence_s + 1.0).start()
    call.note("recording started", step=step.name, path=str(path))
    key: tuple[str, str] | None = None
    try:
        ended_by, key = await _until_the_end(call, step, recorder, gate)
    except asyncio.CancelledError:
        await _finish(call, step, recorder, gate, "hangup", None)
        raise
    except BaseException:
        await recorder.stop()
        raise
    return await _finish(call, step, recorder, gate, ended_by, key)


async def _until_the_end(
    call: FlowCall, step: Record, recorder: Recorder, gate: SpeechGate
) -> tuple[str, tuple[str, str] | None]:
    began = call.clock.monotonic()
    press: asyncio.Task[tuple[str, str]] | None = None
    trimmed_head = False
    try:
        while True:
            if step.finish_key and press is None:
                press = asyncio.ensure_future(call.listener.presses.get())
            if press is not None:
                await asyncio.wait({press}, timeout=POLL_S)
            else:
                await call.clock.sleep(POLL_S)
            if press is not None and press.done():
                key, press = press.result(), None
                if key[0] == step.finish_key:
                    return "finish-key", key
            if gate.speech_start is not None and not trimmed_head:
                since = (gate.samples - gate.speech_start) / gate.rate
                recorder.drop_head(since + PRE_ROLL_S)
                trimmed_head = True
            elapsed = call.clock.monotonic() - began
            if recorder.duration_s >= step.max_s or elapsed >= step.max_s + 2.0:
                return "max-length", None
            if not gate.started and elapsed >= step.silence_s:
                return "no-input", None
            if gate.started and gate.quiet_s >= step.silence_s:
                return "silence", None
    finally:
        if press is not None:
            press.cancel()


async def _finish(
    call: FlowCall,
    step: Record,
    recorder: Recorder,
    gate: SpeechGate,
    ended_by: str,
    key: tuple[str, str] | None,
) -> RecordResult:
    """Cut what should not be kept (a finish key's tone, trailing silence), close the file,
    and store the result."""
    rate = recorder.input_rate
    tail = recorder.recent()
    end = tail.size
    if key is not None:
        onset = keypad_tone_start(tail, rate, key[0])
        if onset is not None:
            end = onset
        log.debug("finish key %s (%s): tone from %s of %d held samples", *key, onset, tail.size)
    frame = int(0.02 * rate)
    loud = gate.loud_frames(tail[:end], frame)
    if loud.size:
        end = min(end, (int(loud[-1]) + 1) * frame + int(POST_ROLL_S * rate))
    spoke = gate.started and (recorder.writer.samples > 0 or loud.size >= SPEECH_FRAMES)
    drop = (tail.size - end) / rate
    drop += max(0.0, recorder.duration_s - drop - step.max_s)  # no longer than max_s
    try:
        await recorder.stop(drop_last_s=drop)
    except OSError:
        log.exception("recording %s failed", recorder.path)
        spoke = False
    if spoke:
        result = RecordResult("recorded", str(recorder.path), recorder.duration_s, ended_by)
    else:
        await asyncio.to_thread(recorder.path.unlink, missing_ok=True)
        result = RecordResult("noinput", None, 0.0, ended_by)
    return keep_message(call, step, result)


def keep_message(call: FlowCall, step: Record, result: RecordResult) -> RecordResult:
    """A Record step's result: in ``call.vars[step.name]``, the record's inputs (and its
    recordings, when a message was kept)."""
    if result.path:
        call.add_recording(result.path)
    call.vars[step.name] = result
    call.record.inputs.append(
        {
            "step": step.name,
            "outcome": "recording" if result.outcome == "recorded" else "noinput",
            "value": result.path or "",
            "text": "",
            "confidence": 1.0,
            "method": result.ended_by,
            "duration_s": round(result.duration_s, 2),
        }
    )
    call.note("recorded", step=step.name, seconds=round(result.duration_s, 2),
              ended_by=result.ended_by)  # fmt: skip
    return result
