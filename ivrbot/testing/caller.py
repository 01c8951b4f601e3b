"""A simulated caller: a real Phone that dials, listens, presses keys and speaks."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from ivrbot.credentials import Credentials
from ivrbot.events import Event
from ivrbot.media.dtmf import tones
from ivrbot.media.frames import WIRE_RATE, pcm_from_frame, rms_dbfs
from ivrbot.media.sinks import FrameCallback, Tee
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.timeline import Entry, Timeline

SPEECH_DB = -45.0  # a received frame louder than this is someone talking
SILENCE_DB = -55.0


class NotAnswered(Exception):
    """The number dialled ended the call before it connected (the reason is the message)."""


@dataclass
class Heard:
    """A prompt the caller heard: speech from ``start`` to ``end`` (``time.monotonic()``),
    its timeline entry, and the text the far end said in it (when its record tells)."""

    start: float
    end: float
    entry: Entry
    text: str = ""

    @property
    def seconds(self) -> float:
        return round(self.end - self.start, 2)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "text": self.text}


def texts_heard(heard: list[tuple[float, float]], said: list[tuple[float, str]]) -> list[str]:
    """The text of each span of speech ``heard`` ((start, end) on the wall clock, in order),
    from what the far end ``said`` ((time it began, text)): a prompt belongs to the first
    span that ends after it began (prompts said back to back are heard as one span); a
    prompt begun after the last span ended was not heard."""
    texts: list[list[str]] = [[] for _ in heard]
    for began, text in sorted(said):
        k = next((i for i, (_, end) in enumerate(heard) if end >= began), None)
        if k is not None:
            texts[k].append(text)
    return [" ".join(t) for t in texts]


class Ear:
    """What the caller hears: per-frame levels on the monotonic clock, prompt boundaries."""

    def __init__(self) -> None:
        self.levels: list[tuple[float, float]] = []  # (time.monotonic(), dBFS)
        self.wall_offset = time.time() - time.monotonic()  # monotonic + this = wall clock
        self.audio: list[np.ndarray] = []
        self._changed = asyncio.Event()

    def on_frame(self, frame: av.AudioFrame) -> None:
        pcm = pcm_from_frame(frame)
        self.levels.append((time.monotonic(), rms_dbfs(pcm)))
        self.audio.append(pcm)
        self._changed.set()

    def level_between(self, start: float, end: float) -> list[float]:
        return [db for t, db in self.levels if start <= t <= end]

    async def prompt(self, silence_s: float = 0.8, timeout_s: float = 30.0) -> tuple[float, float]:
        """Wait for speech followed by ``silence_s`` of quiet; returns (speech start, end)."""
        deadline = time.monotonic() + timeout_s
        start_index = len(self.levels)
        while time.monotonic() < deadline:
            heard = self.levels[start_index:]
            loud = [t for t, db in heard if db > SPEECH_DB]
            if loud and heard[-1][0] - loud[-1] >= silence_s:
                return loud[0], loud[-1]
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 1.0)
            except TimeoutError:
                pass
        raise TimeoutError(f"heard no prompt within {timeout_s} s")

    def spans(self, after: float, silence_s: float = 0.8) -> list[tuple[float, float]]:
        """The spans of speech heard after ``after`` (a monotonic time), split where quiet
        lasted ``silence_s``: (first loud frame, last loud frame) each."""
        spans: list[tuple[float, float]] = []
        for t, db in self.levels:
            if t <= after or db <= SPEECH_DB:
                continue
            if spans and t - spans[-1][1] < silence_s:
                spans[-1] = (spans[-1][0], t)
            else:
                spans.append((t, t))
        return spans

    async def speech(self, timeout_s: float = 30.0) -> float:
        """Wait for the first frame of speech from now on; returns when it was heard."""
        async with asyncio.timeout(timeout_s):
            start_index = len(self.levels)
            while True:
                loud = [t for t, db in self.levels[start_index:] if db > SPEECH_DB]
                if loud:
                    return loud[0]
                self._changed.clear()
                await self._changed.wait()


class SimulatedCaller:
    """Dial a number and act like a person: wait for prompts, press keys, speak words."""

    def __init__(
        self,
        gateway_url: str,
        tts: Synthesizer,
        timeline: Timeline | None = None,
        user: str = "caller",
        domain: str = "ivrbot.local",
        credentials: Credentials | None = None,
    ) -> None:
        self.phone = Phone(gateway_url, name=user, domain=domain)
        self.credentials = credentials  # None: IVRBOT_API_KEY if set (else none)
        self.gateway_url = gateway_url
        self.user_id = f"{user}@{domain}"
        self.tts = tts
        self.timeline = timeline or Timeline()
        self.ear = Ear()
        self.call: Call | None = None
        self.disconnected = asyncio.Event()
        self.heard: list[Heard] = []  # every prompt heard, in order
        self.events: list[tuple[str, Any]] = []
        for name in (
            Event.CALL_CONNECTED, Event.CALL_DISCONNECTED, Event.CALL_REJECTED,
            Event.DTMF_TONE_SENT,
        ):  # fmt: skip
            self.phone.on(name, self._recorder(name))

    def _recorder(self, name: Event) -> Any:
        def record(payload: Any) -> None:
            self.events.append((name, payload))
            detail = {"tone": payload.get("tone")} if name == Event.DTMF_TONE_SENT else {}
            if name in (Event.CALL_DISCONNECTED, Event.CALL_REJECTED):
                self.disconnected.set()
                detail = {"reason": payload.get("message")}
            self.note(name, **detail)

        return record

    def note(self, event: str, **detail: Any) -> None:
        self.timeline.add("caller", event, **{k: v for k, v in detail.items() if v is not None})

    async def dial(
        self, number: str, timeout_s: float = 15.0, also: FrameCallback | None = None
    ) -> Call:
        """Log in, dial and wait until the call connects; ``also`` hears what the ear hears.

        Raises :class:`NotAnswered` when the call ends before it connects, TimeoutError when
        it has not connected after ``timeout_s``; TokensRefused when the gateway refuses the
        caller's credentials."""
        token = await fetch_token(self.gateway_url, "ACCOUNT_ID", self.credentials)
        await self.phone.login(token=token, user_id=self.user_id)
        connected = asyncio.Event()
        self.phone.on(Event.CALL_CONNECTED, lambda _: connected.set())
        self.note("dialing", to=number)
        sink = Tee(self.ear.on_frame, also) if also is not None else self.ear.on_frame
        self.call = await self.phone.dial(number, remote_media=sink)
        waits = [asyncio.ensure_future(e.wait()) for e in (connected, self.disconnected)]
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not connected.is_set() and self.disconnected.is_set():
            raise NotAnswered(self.call.end_reason or "the call ended")
        if not connected.is_set():
            raise TimeoutError(f"the call did not connect within {timeout_s:g} s")
        return self.call

    async def hear_prompt(self, silence_s: float = 0.8, timeout_s: float = 30.0) -> float:
        """Wait until a prompt has been heard to its end; returns its length in seconds."""
        start, end = await self.ear.prompt(silence_s, timeout_s)
        entry = self.timeline.add("caller", "heard prompt", seconds=round(end - start, 2))
        self.heard.append(Heard(start, end, entry))
        return end - start

    def finish_hearing(self, silence_s: float = 0.8) -> list[Heard]:
        """At the end of the call: the speech heard but not yet waited out (the far end
        hung up, or the caller stopped listening, less than ``silence_s`` after it) counts
        as prompts heard too, noted at the time each ended. Returns every prompt heard."""
        after = self.heard[-1].end if self.heard else 0.0
        for start, end in self.ear.spans(after, silence_s):
            entry = self.timeline.add_at(
                end, "caller", "heard prompt", seconds=round(end - start, 2)
            )
            self.heard.append(Heard(start, end, entry))
        return self.heard

    def name_prompts(self, prompts: list[str], began: list[float]) -> None:
        """Give each prompt heard the text the far end said in it: its record's ``prompts``
        and the times (``time.time()``) each ``began``. The timeline's entries get it too."""
        if not prompts or len(prompts) != len(began):
            return
        offset = self.ear.wall_offset
        spans = [(h.start + offset, h.end + offset) for h in self.heard]
        said = list(zip(began, prompts, strict=True))
        for heard, text in zip(self.heard, texts_heard(spans, said), strict=True):
            if text:
                heard.text = text
                heard.entry = self.timeline.amend(heard.entry, text=text)

    async def press(self, digits: str) -> None:
        """Press keys as RFC 4733 events."""
        self.note("press", digits=digits)
        await self.phone.send_dtmf_tone(input=digits)

    async def press_inband(self, digits: str, duration_ms: int = 100) -> None:
        """Press keys as audible tones in the call's audio (no RFC 4733)."""
        assert self.call is not None
        self.note("press in-band", digits=digits)
        await self.call.play(tones(digits, WIRE_RATE, duration_ms=duration_ms), WIRE_RATE, "dtmf")

    async def say(self, text: str, voice: str = "ko") -> None:
        assert self.call is not None
        prompt = await self.tts.synth(text, voice)
        self.note("say", text=text)
        await self.call.play(prompt.pcm, prompt.sample_rate, text)

    async def play(self, pcm: np.ndarray, rate: int, label: str = "") -> None:
        """Play audio into the call (a recording, say) and wait until it has been sent."""
        assert self.call is not None
        self.note("play", file=label or None, seconds=round(pcm.size / rate, 2))
        await self.call.play(pcm, rate, label)

    async def hangup(self) -> None:
        self.note("hangup")
        await self.phone.hangup()

    async def close(self) -> None:
        await self.phone.close()
