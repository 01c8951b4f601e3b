"""The load harness's callers: worker processes, each placing several calls at once.

A caller is cheap on purpose: what it sends is Opus encoded once at start-up (a silence
packet, and each word it speaks) and handed to aiortc as packets, so no encoder runs per
call; what it receives is decoded by aiortc (that cannot be skipped) and reduced to one
level per 20 ms frame (numpy) plus the frame's arrival time and RTP timestamp.

Times are ``time.monotonic()`` seconds inside a worker; results carry durations only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import os
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av
import numpy as np
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ivrbot.events import Event
from ivrbot.media.frames import WIRE_RATE, WIRE_SAMPLES, frame_from_pcm
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token

LOUD_DB = -45.0  # a received frame louder than this is the bot talking (as SimulatedCaller)
PROMPT_END_S = 0.7  # this long without a loud frame: the prompt has ended
PTIME = 0.020
SETTLE_S = 0.5  # lateness leaves out the first 0.5 s of a received stream (its start-up)
TIME_BASE = fractions.Fraction(1, WIRE_RATE)
log = logging.getLogger("bench.load.caller")


# sending: pre-encoded Opus --------------------------------------------------------------------
@dataclass
class Utterance:
    """A word as Opus packets, and which packet carries the last loud 20 ms."""

    packets: list[bytes]
    last_loud: int


def encode(pcm: np.ndarray, lead_frames: int = 10, tail_frames: int = 3) -> Utterance:
    """Opus packets (20 ms each) of mono int16 48 kHz ``pcm``, padded with silence (the lead
    lets the encoder settle, so splicing after the separately encoded silence packet is
    200 ms before the word)."""
    frames = -(-pcm.size // WIRE_SAMPLES)
    padded = np.zeros((lead_frames + frames + tail_frames) * WIRE_SAMPLES, np.int16)
    padded[lead_frames * WIRE_SAMPLES : lead_frames * WIRE_SAMPLES + pcm.size] = pcm
    encoder = OpusEncoder()
    packets: list[bytes] = []
    for i in range(padded.size // WIRE_SAMPLES):
        chunk = padded[i * WIRE_SAMPLES : (i + 1) * WIRE_SAMPLES]
        payloads, _ = encoder.encode(frame_from_pcm(chunk, i * WIRE_SAMPLES))
        packets += payloads
    chunks = padded.reshape(-1, WIRE_SAMPLES).astype(np.float32)
    loud = np.nonzero(10 * np.log10(np.mean(chunks**2, axis=1) / 32768.0**2 + 1e-12) > LOUD_DB)
    last = int(loud[0][-1]) if loud[0].size else lead_frames
    return Utterance(packets, min(last + 1, len(packets) - 1))  # +1: the encoder's delay


def silence_packet() -> bytes:
    return encode(np.zeros(WIRE_SAMPLES * 20, np.int16), 0, 0).packets[-1]


class PacketTrack(MediaStreamTrack):
    """Sends a pre-encoded silence packet every 20 ms, or the packets of a word being said."""

    kind = "audio"

    def __init__(self, silence: bytes) -> None:
        super().__init__()
        self._silence = silence
        self._start: float | None = None
        self._n = 0
        self._words: deque[tuple[Utterance, asyncio.Future[float]]] = deque()
        self._pos = 0

    def say(self, word: Utterance) -> asyncio.Future[float]:
        """Queue a word; the future gives the time its last loud packet went out."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._words.append((word, done))
        return done

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._n += 1
            wait = self._start + self._n * PTIME - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        payload = self._silence
        if self._words:
            word, done = self._words[0]
            payload = word.packets[self._pos]
            if self._pos == word.last_loud and not done.done():
                done.set_result(time.monotonic())
            self._pos += 1
            if self._pos >= len(word.packets):
                self._words.popleft()
                self._pos = 0
        packet = av.Packet(payload)
        packet.pts = self._n * WIRE_SAMPLES
        packet.time_base = TIME_BASE
        return packet


# receiving: one level per frame ---------------------------------------------------------------
class Ear:
    """Per received frame: arrival time, RTP timestamp, loud or not. Waits on prompts."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.pts: list[int] = []
        self.last_loud: float | None = None
        self._first_loud: float | None = None  # the first loud frame since mark()
        self._heard = asyncio.Event()

    def __call__(self, frame: av.AudioFrame) -> None:
        now = time.monotonic()
        self.times.append(now)
        self.pts.append(frame.pts if frame.pts is not None else -1)
        x = frame.to_ndarray().astype(np.float32).ravel()
        mean_square = float(np.dot(x, x)) / max(1, x.size)
        if mean_square > (32768.0**2) * 10 ** (LOUD_DB / 10):
            self.last_loud = now
            if self._first_loud is None:
                self._first_loud = now
                self._heard.set()

    def mark(self) -> None:
        """From now on, wait for the next loud frame."""
        self._first_loud = None
        self._heard.clear()

    async def loud(self) -> float:
        """The time of the first loud frame since mark()."""
        await self._heard.wait()
        assert self._first_loud is not None
        return self._first_loud

    async def prompt_end(self) -> float:
        """Once loud audio since mark() was followed by PROMPT_END_S of quiet: its last loud
        frame's time."""
        await self._heard.wait()
        while True:
            assert self.last_loud is not None
            wait = self.last_loud + PROMPT_END_S - time.monotonic()
            if wait <= 0:
                return self.last_loud
            await asyncio.sleep(wait)

    def lateness_ms(self, settle_s: float = 0.0) -> np.ndarray:
        """Each frame's arrival against the 20 ms schedule of the stream (its RTP timestamps),
        the schedule anchored at the earliest frame: 0 = on time. ``settle_s``: leave out
        the frames of the stream's first seconds (its start-up burst)."""
        if len(self.times) < 2:
            return np.zeros(0, np.float32)
        pts = np.asarray(self.pts, np.int64)
        steps = np.diff(pts)
        steps[steps < -(2**31)] += 2**32  # the RTP timestamp wrapped
        schedule = np.concatenate(([0], np.cumsum(steps))) / WIRE_RATE
        offset = np.asarray(self.times) - schedule
        offset = offset[schedule >= settle_s]
        if offset.size == 0:
            return np.zeros(0, np.float32)
        return ((offset - offset.min()) * 1000.0).astype(np.float32)


# one call --------------------------------------------------------------------------------------
@dataclass
class CallSpec:
    id: int
    kind: str  # 'menu' | 'speech' | 'burst'
    number: str
    dial_at: float  # wall clock (time.time())
    hold_s: float = 0.0  # connected -> the last input, at least
    answer_wait_s: float = 15.0  # dial -> connected, at most (burst: then it is 'queued')


@dataclass
class CallResult:
    id: int
    kind: str
    outcome: str = "not dialled"  # completed | incomplete | busy | queued | lost | answered
    detail: str = ""
    dial_connected_ms: float | None = None
    answer_first_audio_ms: float | None = None
    key_next_ms: list[float] = field(default_factory=list)
    speech_next_ms: list[float] = field(default_factory=list)
    rang_first: bool = False  # ringback before the answer (today's gateway: every call)
    call_s: float = 0.0  # connected -> ended
    lateness_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    lateness_all_p99_ms: float | None = None  # start-up included

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "lateness_ms"}
        out["frames"] = int(self.lateness_ms.size)
        return out


class Caller:
    """One Phone, one call, one script."""

    def __init__(self, url: str, spec: CallSpec, words: dict[str, Utterance], silence: bytes):
        self.url = url
        self.spec = spec
        self.words = words
        self.track = PacketTrack(silence)
        self.ear = Ear()
        self.phone = Phone(url, name=f"load{spec.id}")
        self.result = CallResult(spec.id, spec.kind)
        self.connected = asyncio.Event()
        self.ended = asyncio.Event()
        self.rang = False
        self.end_reason = ""
        self.connected_at: float | None = None
        self.ended_at: float | None = None
        self.phone.on(Event.CALL_CONNECTED, self._on_connected)
        self.phone.on(Event.CALL_RINGBACK_PROVIDED, self._on_ringback)
        for event in (Event.CALL_DISCONNECTED, Event.CALL_REJECTED, Event.CALL_CANCELED):
            self.phone.on(event, self._ender(event))

    def _on_connected(self, _: Any) -> None:
        self.connected_at = time.monotonic()
        self.connected.set()

    def _on_ringback(self, _: Any) -> None:
        if not self.connected.is_set():
            self.rang = True

    def _ender(self, event: Event) -> Callable[[Any], None]:
        def ended(payload: Any) -> None:
            self.end_reason = f"{event.value}: {payload.get('message', '')}"
            self.ended_at = time.monotonic()
            self.ended.set()

        return ended

    async def login(self) -> None:
        token = await fetch_token(self.url, "ACCOUNT_ID")
        await self.phone.login(token=token, user_id=f"load{self.spec.id}@ivrbot.local")

    async def run(self) -> CallResult:
        r = self.result
        try:
            await self.login()
            await asyncio.sleep(max(0.0, self.spec.dial_at - time.time()))
            if not await self._dial():
                return r
            if self.spec.kind == "burst":
                await self._burst()
            else:
                await self._menu()
        except Exception as exc:
            r.outcome = r.outcome if r.outcome != "not dialled" else "lost"
            r.detail = r.detail or f"{type(exc).__name__}: {exc}"
            log.debug("call %d: %s", self.spec.id, traceback.format_exc())
        finally:
            if self.connected_at is not None:
                r.call_s = (self.ended_at or time.monotonic()) - self.connected_at
            r.lateness_ms = self.ear.lateness_ms(SETTLE_S)
            whole = self.ear.lateness_ms()
            if whole.size:
                r.lateness_all_p99_ms = round(float(np.percentile(whole, 99)), 1)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.phone.close(), 10)
        return r

    async def _dial(self) -> bool:
        """Dial and wait for the answer; False when there is no call to go on with."""
        r = self.result
        began = time.monotonic()
        await self.phone.dial(self.spec.number, local_media=self.track, remote_media=self.ear)
        r.outcome = "lost"
        first = await _first(self.connected, self.ended, timeout=self.spec.answer_wait_s)
        if first is self.connected:
            r.dial_connected_ms = (time.monotonic() - began) * 1000
            if self.connected_at is not None:
                r.dial_connected_ms = (self.connected_at - began) * 1000
            r.rang_first = self.rang
            return True
        if first is self.ended:
            r.outcome = "busy" if "User busy" in self.end_reason else "lost"
            r.detail = self.end_reason
        else:
            r.outcome = "queued" if self.spec.kind == "burst" else "lost"
            r.detail = "ringback, no answer yet" if self.rang else "no answer yet"
            with contextlib.suppress(Exception):
                await self.phone.cancel()
        return False

    async def _first_prompt(self) -> None:
        assert self.connected_at is not None
        heard = await asyncio.wait_for(self.ear.loud(), 15)
        self.result.answer_first_audio_ms = (heard - self.connected_at) * 1000

    async def _burst(self) -> None:
        """Answered: hear the first prompt, stay a second, hang up."""
        r = self.result
        r.outcome = "answered"
        with contextlib.suppress(TimeoutError):
            await self._first_prompt()
        await asyncio.sleep(1.0)
        await self.phone.hangup()
        self.ended_at = time.monotonic()

    async def _menu(self) -> None:
        r = self.result
        r.outcome = "incomplete"
        speech = self.spec.kind == "speech"
        inputs = ["예약", "아니요"] if speech else ["1", "3"]
        await self._first_prompt()
        await asyncio.wait_for(self.ear.prompt_end(), 30)
        for i, given in enumerate(inputs):
            if i == len(inputs) - 1:  # the last input no sooner than hold_s after the answer
                assert self.connected_at is not None
                await asyncio.sleep(
                    max(0.0, self.connected_at + self.spec.hold_s - time.monotonic())
                )
            if self.ended.is_set():
                r.detail = f"ended before input {given}: {self.end_reason}"
                return
            self.ear.mark()
            if speech:
                given_at = await asyncio.wait_for(self.track.say(self.words[given]), 10)
            else:
                given_at = time.monotonic()
                await self.phone.send_dtmf_tone(input=given)
            heard = await asyncio.wait_for(self.ear.loud(), 15)
            (r.speech_next_ms if speech else r.key_next_ms).append((heard - given_at) * 1000)
            if i < len(inputs) - 1:
                await asyncio.wait_for(self.ear.prompt_end(), 30)
        # the goodbye: the bot hangs up after it (a wrong path never hangs up)
        try:
            await asyncio.wait_for(self.ended.wait(), 15)
        except TimeoutError:
            r.detail = "the bot did not hang up after the last input"
            await self.phone.hangup()
            self.ended_at = time.monotonic()
            return
        if "call:disconnected" in self.end_reason:
            r.outcome = "completed"
        else:
            r.detail = self.end_reason


async def _first(*events: asyncio.Event, timeout: float) -> asyncio.Event | None:
    waits = {asyncio.ensure_future(e.wait()): e for e in events}
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
    for e in events:  # in the order given: connected wins over ended
        if e.is_set():
            return e
    return None


# the worker process ---------------------------------------------------------------------------
async def _run_job(
    url: str, specs: list[CallSpec], words: dict[str, Utterance], silence: bytes
) -> list[CallResult]:
    callers = [Caller(url, spec, words, silence) for spec in specs]
    return list(await asyncio.gather(*(c.run() for c in callers)))


def worker_main(index: int, jobs: Any, results: Any, speech: dict[str, np.ndarray]) -> None:
    """A caller process: encodes its words once, then runs jobs until it gets None.

    A job is (job id, gateway URL, [CallSpec]); it answers (job id, worker index, [CallResult],
    CPU seconds this process used for the job)."""
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("aioice", "aiortc", "ivrbot"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    words = {text: encode(pcm) for text, pcm in speech.items()}
    silence = silence_packet()
    results.put(("ready", index, [], 0.0))
    while True:
        job = jobs.get()
        if job is None:
            return
        job_id, url, specs = job
        cpu = time.process_time()
        try:
            out = asyncio.run(_run_job(url, specs, words, silence))
        except Exception as exc:  # report, never hang the harness
            out = [CallResult(s.id, s.kind, "lost", f"worker: {exc!r}") for s in specs]
        results.put((job_id, index, out, time.process_time() - cpu))
