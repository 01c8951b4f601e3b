"""A simulated callee: someone a bot calls, who answers as a person or as an answering machine."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ivrbot.events import Event
from ivrbot.media.frames import WIRE_RATE, resample
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.timeline import Timeline

HUMAN_GREETING = "Hello?"
MACHINE_GREETING = (
    "Hi, you have reached the Smith family. We cannot come to the phone right now. "
    "Please leave a message after the tone."
)


class SimulatedCallee(SimulatedCaller):
    """Someone the bot calls: answers, plays ``greeting`` (a person's hello, or a machine's
    message and beep), then acts like a :class:`SimulatedCaller`."""

    def __init__(self, gateway_url: str, tts: Synthesizer, timeline: Timeline | None,
                 greeting: np.ndarray, user: str = "callee") -> None:  # fmt: skip
        super().__init__(gateway_url, tts, timeline, user=user)
        self.greeting = greeting
        self.greeted = asyncio.Event()
        self.phone.on(Event.CALL_INCOMING, self._answer)
        self.phone.on(Event.CALL_CONNECTED, self._greet)

    def note(self, event: str, **detail: Any) -> None:
        self.timeline.add("callee", event, **{k: v for k, v in detail.items() if v is not None})

    async def log_in(self) -> None:
        token = await fetch_token(self.gateway_url, "ACCOUNT_ID")
        await self.phone.login(token=token, user_id=self.user_id)

    async def _answer(self, _: Any) -> None:
        self.note("answer")
        self.call = await self.phone.answer(remote_media=self.ear.on_frame)

    async def _greet(self, _: Any) -> None:
        assert self.call is not None
        await asyncio.sleep(0.3)
        self.note("greeting", seconds=round(self.greeting.size / WIRE_RATE, 2))
        await self.call.play(self.greeting, WIRE_RATE, "greeting")
        self.greeted.set()


async def greeting_audio(tts: Synthesizer, machine: bool, text: str | None = None) -> np.ndarray:
    """What the callee plays when it answers: ``text`` (default: a person's hello or a
    machine's message), and for a machine a 1000 Hz beep after it."""
    text = text or (MACHINE_GREETING if machine else HUMAN_GREETING)
    prompt = await tts.synth(text, "en")
    words = resample(prompt.pcm, prompt.sample_rate, WIRE_RATE)
    if not machine:
        return words
    beep = sine(1000, 0.5, WIRE_RATE, dbfs=-10.0)
    return np.concatenate([words, np.zeros(WIRE_RATE // 5, np.int16), beep])
