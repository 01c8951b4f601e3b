"""Counted no-input handling with escalating prompts (VoiceXML's <noinput count=...>)."""

from __future__ import annotations

import asyncio

import pytest
import vosk

from ivrbot.flow import Ask, Flow, Hangup, Retry
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer
from tests.flow.calling import call_once

pytestmark = pytest.mark.e2e


def patient_flow() -> Flow:
    flow = Flow(
        "patient",
        number="5550001002",
        retry=Retry(
            attempts=3, no_input_prompts=("I did not hear you.", "Please press a key now.")
        ),
    )
    flow.add(
        Ask("pin", "Your pin?", digits=1, timeout_s=1.0, next="thanks", no_input="bye"),
        Hangup("thanks", "Thanks."),
        Hangup("bye", "Goodbye."),
    )
    return flow


async def test_silence_gets_escalating_prompts_then_goodbye(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model
) -> None:
    _, bot = await call_once(gateway, tts, patient_flow(), "5550001002", model)
    record = bot.records[0]
    assert record.prompts == [
        "Your pin?", "I did not hear you.", "Your pin?", "Please press a key now.", "Your pin?",
        "Goodbye.",
    ]  # fmt: skip
    assert [i["outcome"] for i in record.inputs] == ["noinput"] * 3
    assert record.path == ["pin", "bye"]


async def test_a_key_on_the_second_attempt_goes_on(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model
) -> None:
    bot = Bot(patient_flow(), gateway.url, tts, model)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial("5550001002")
        await caller.hear_prompt(silence_s=0.4)  # "Your pin?" (1 s to answer: stay silent)
        await caller.hear_prompt(silence_s=0.4)  # "I did not hear you." "Your pin?"
        await caller.press("4")
        async with asyncio.timeout(15):
            await caller.disconnected.wait()
        await bot.wait_records()
    finally:
        await caller.close()
        await bot.stop()
    record = bot.records[0]
    assert [i["outcome"] for i in record.inputs] == ["noinput", "dtmf"]
    assert record.digits == "4" and record.path == ["pin", "thanks"]
