"""Outbound calls: the bot dials, tells a person from an answering machine, and runs the
flow (after the machine's beep)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Say
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import WIRE_RATE
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine
from ivrbot.testing.caller import SPEECH_DB, Ear
from ivrbot.wire.server import GatewayServer

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = "This is a reminder from the clinic. Goodbye."


def reminder() -> Flow:
    flow = Flow("reminder", number="5550001004")
    flow.add(Say("hello", "Hello.", next="route"))

    @flow.step("route", goes_to=["confirm", "message"])
    async def route(call: FlowCall) -> str:
        return "message" if call.vars.get("answered_by") == "machine" else "confirm"

    flow.add(
        Ask("confirm", "Press 1 to confirm your visit.", timeout_s=4, next="done", no_input="done"),
        Hangup("done", "Thank you."),
        Hangup("message", MESSAGE),
    )
    return flow


class Callee:
    """Someone who answers and then plays ``greeting`` (a person, or a machine)."""

    def __init__(self, url: str) -> None:
        self.phone = Phone(url, name="callee")
        self.ear = Ear()
        self.call: Call | None = None
        self.greeting: np.ndarray = np.zeros(0, np.int16)
        self.greeting_end: float | None = None
        self.ended = asyncio.Event()
        self.phone.on("call:incoming", self._answer)
        self.phone.on("call:connected", self._speak)
        self.phone.on("call:disconnected", lambda _: self.ended.set())

    async def _answer(self, _: Any) -> None:
        self.call = await self.phone.answer(remote_media=self.ear.on_frame)

    async def _speak(self, _: Any) -> None:
        assert self.call is not None
        await asyncio.sleep(0.3)
        playback = self.call.play(self.greeting, WIRE_RATE, "greeting")
        await playback
        self.greeting_end = playback.ended_at


@pytest.fixture
async def callee(gateway: GatewayServer) -> AsyncIterator[Callee]:
    person = Callee(gateway.url)
    await person.phone.login(token=await fetch_token(gateway.url), user_id="pat@ivrbot.local")
    yield person
    await person.phone.close()


@pytest.fixture
async def bot(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[Bot]:
    bot = Bot(reminder(), gateway.url, tts)
    await bot.start()
    yield bot
    await bot.stop()


async def speech(tts: Synthesizer, text: str) -> np.ndarray:
    from ivrbot.media.frames import resample

    prompt = await tts.synth(text, "en")
    return resample(prompt.pcm, prompt.sample_rate, WIRE_RATE)


@pytest.mark.e2e
async def test_a_person_answers_and_presses_one(bot: Bot, callee: Callee, tts: Synthesizer) -> None:
    callee.greeting = await speech(tts, "Hello?")

    async def press_when_asked() -> None:
        await callee.ear.prompt(silence_s=0.6)  # "Hello." "Press 1 to confirm your visit."
        await callee.phone.send_dtmf_tone("1")

    presser = asyncio.ensure_future(press_when_asked())
    flow_call = await bot.dial("pat@ivrbot.local")
    record = await bot.finished_call(flow_call, timeout_s=40)
    presser.cancel()
    assert flow_call.vars["answered_by"] == "human"
    assert record.path == ["hello", "route", "confirm", "done"]
    assert record.digits == "1"


@pytest.mark.e2e
async def test_a_machine_gets_the_message_after_its_beep(
    bot: Bot, callee: Callee, tts: Synthesizer
) -> None:
    greeting = await speech(
        tts,
        "Hi, you have reached the Smith family. We cannot come to the phone right now. "
        "Please leave a message after the tone.",
    )
    beep = sine(1000, 0.5, dbfs=-10.0)
    callee.greeting = np.concatenate([greeting, np.zeros(WIRE_RATE // 5, np.int16), beep])
    flow_call = await bot.dial("pat@ivrbot.local")
    record = await bot.finished_call(flow_call, timeout_s=60)
    assert flow_call.vars["answered_by"] == "machine"
    assert flow_call.vars["beep"] is True
    assert record.path == ["hello", "route", "message"] and record.prompts[-1] == MESSAGE
    # the bot spoke only after the beep ended: nothing loud reached the callee before it
    assert callee.greeting_end is not None
    before = [db for t, db in callee.ear.levels if t < callee.greeting_end - 0.05]
    after = [db for t, db in callee.ear.levels if t > callee.greeting_end + 0.2]
    assert max(before) < SPEECH_DB and max(after) > SPEECH_DB


@pytest.mark.e2e
async def test_nobody_there_is_not_answered(bot: Bot) -> None:
    flow_call = await bot.dial("nobody@ivrbot.local")
    record = await bot.finished_call(flow_call, timeout_s=10)
    assert record.outcome == "not-found" and record.path == []


@pytest.mark.e2e
async def test_ivrbot_dial_command(
    gateway: GatewayServer, callee: Callee, tts: Synthesizer, tmp_path: Any
) -> None:
    import json
    import sys

    callee.greeting = await speech(tts, "Hello?")
    flow_file = tmp_path / "reminder.py"
    flow_file.write_text(
        "from ivrbot.flow import Flow, Hangup\n"
        "flow = Flow('reminder', number='5550001005')\n"
        "flow.add(Hangup('bye', 'Your visit is tomorrow at nine. Goodbye.'))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", "dial", str(flow_file), "pat@ivrbot.local",
        "--gateway", gateway.url, "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    record = json.loads(out)
    assert record["answered_by"] == "human" and record["path"] == ["bye"]
    assert record["prompts"] == ["Your visit is tomorrow at nine. Goodbye."]
    assert callee.ended.is_set()


@pytest.mark.contract  # the command's message: no gateway, no call
async def test_ivrbot_dial_without_gateway_is_one_line(tmp_path: Any) -> None:
    import sys

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", "dial", "welcome", "5550001099",
        "--gateway", "http://127.0.0.1:9",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and "ivrbot run" in lines[0]
