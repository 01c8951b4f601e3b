"""Simulated callees (tests, the example campaign): Phones logged in to the gateway as
contact numbers that answer as a person (and press a key when asked), answer as a machine
(greeting, then a beep), reject, or never answer.

``ivrbot campaign callees CSV`` logs in one per row of a contact file, behaving as its
``simulate`` column says: person, machine, reject, silent or opt-out (a person who
presses 9)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ivrbot.media.frames import WIRE_RATE, resample
from ivrbot.media.tones import _sine_sum
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callee import MACHINE_GREETING
from ivrbot.testing.caller import Ear

KINDS = ("person", "machine", "reject", "silent")


async def speech(tts: Synthesizer, text: str) -> np.ndarray:
    prompt = await tts.synth(text, "en")
    return resample(prompt.pcm, prompt.sample_rate, WIRE_RATE)


class Callee:
    """A contact's phone. ``kind``: 'person' (says hello, presses ``key`` when asked),
    'machine', 'reject' or 'silent' (never answers)."""

    def __init__(self, url: str, number: str, kind: str, key: str = "1") -> None:
        if kind == "opt-out":
            kind, key = "person", "9"
        if kind not in KINDS:
            raise ValueError(f"simulate={kind!r}: use {', '.join(KINDS)} or opt-out")
        self.url = url
        self.phone = Phone(url, name=f"callee {number} ({kind})")
        self.number = number
        self.kind = kind
        self.key = key
        self.ear = Ear()
        self.greeting = np.zeros(0, np.int16)
        self.rings = 0  # incoming calls seen
        self.answered = 0
        self.call: Call | None = None
        self.phone.on("call:incoming", self._incoming)
        self.phone.on("call:connected", self._connected)

    async def login(self, tts: Synthesizer) -> None:
        if self.kind == "person":
            self.greeting = await speech(tts, "Hello?")
        elif self.kind == "machine":
            words = await speech(tts, MACHINE_GREETING)
            beep = _sine_sum((1000.0,), 0.5, -10.0).astype(np.int16)
            self.greeting = np.concatenate([words, np.zeros(WIRE_RATE // 5, np.int16), beep])
        token = await fetch_token(self.url, "VIRTUAL_NUMBER")
        await self.phone.login(token=token, user_id="vtn:" + self.number[-10:])

    async def _incoming(self, _: Any) -> None:
        self.rings += 1
        if self.kind == "reject":
            await self.phone.reject()
        elif self.kind in ("person", "machine"):
            self.ear = Ear()
            self.call = await self.phone.answer(remote_media=self.ear.on_frame)
            self.answered += 1

    async def _connected(self, _: Any) -> None:
        assert self.call is not None
        await asyncio.sleep(0.3)
        await self.call.play(self.greeting, WIRE_RATE, "greeting")
        if self.kind == "person":
            await self.ear.prompt(silence_s=0.8, timeout_s=40)  # the reminder's question
            await self.phone.send_dtmf_tone(self.key)

    async def close(self) -> None:
        await self.phone.close()


async def simulate(url: str, rows: list[tuple[str, str]], tts: Synthesizer) -> list[Callee]:
    """Callees logged in for (E.164 number, kind) ``rows``."""
    callees = [Callee(url, number, kind) for number, kind in rows]
    for callee in callees:
        await callee.login(tts)
    return callees
