"""The welcome flow end to end: a simulated caller rings the bot over real media.

Real gateway, real aiortc legs on 127.0.0.1, real espeak-ng prompts, the real Korean vosk
model. Assertions are on audio the caller measured and on what the bot recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import vosk

from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SILENCE_DB, SPEECH_DB, SimulatedCaller
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.e2e

WELCOME = Path(__file__).resolve().parents[2] / "flows" / "welcome.py"


@pytest.fixture
async def bot(gateway: GatewayServer, tts: Synthesizer, model: vosk.Model) -> AsyncIterator[Bot]:
    bot = Bot(load_flow_file(WELCOME), gateway.url, tts, model)
    await bot.start()
    yield bot
    await bot.stop()


@pytest.fixture
async def caller(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[SimulatedCaller]:
    caller = SimulatedCaller(gateway.url, tts)
    yield caller
    await caller.close()


async def ended(bot: Bot) -> None:
    async with asyncio.timeout(10):
        while not bot.finished:
            await asyncio.sleep(0.05)


async def test_caller_hears_the_greeting_and_silence_after_it(
    bot: Bot, caller: SimulatedCaller
) -> None:
    await caller.dial("5550001000")
    await caller.hear_prompt()
    flow_call = next(iter(bot.active.values()))[0]
    greeting = flow_call.playbacks[0]
    assert greeting.started_at and greeting.ended_at
    # Opus and two legs delay the audio by roughly 0.1 s: skip the edges of each window.
    during = caller.ear.level_between(greeting.started_at + 0.25, greeting.ended_at)
    after = caller.ear.level_between(greeting.ended_at + 0.35, greeting.ended_at + 0.8)
    assert len(during) > 20 and len(after) > 10
    assert np.mean(np.array(during) > SPEECH_DB) > 0.6, "the caller hears no greeting"
    assert max(after) < SILENCE_DB, "the caller hears sound while the bot is silent"
    await caller.hangup()


async def test_digits_both_ways_and_a_spoken_word(
    bot: Bot, caller: SimulatedCaller, gateway: GatewayServer
) -> None:
    await caller.dial("5550001000")
    await caller.hear_prompt()
    await caller.press("7")  # RFC 4733
    await caller.hear_prompt()  # "You pressed 7. Anything else?"
    await caller.press_inband("4")  # audible tones only
    await caller.hear_prompt()
    await caller.say("메뉴")
    await caller.hear_prompt()
    await caller.hangup()
    await ended(bot)

    record = bot.records[0]
    inputs = [(i["outcome"], i["value"], i["method"]) for i in record.inputs]
    assert inputs == [("dtmf", "7", "rfc4733"), ("dtmf", "4", "inband"), ("speech", "menu", "asr")]
    assert record.path[:3] == ["menu", "confirm", "more"]
    assert "You pressed 7." in record.prompts and "You pressed 4." in record.prompts
    assert "You said menu." in record.prompts
    assert record.outcome == "caller-hangup"
    # both legs torn down: no call and no leg left; logging out leaves no session
    assert gateway.gateway.switch.calls == {}
    assert all(not s.calls for s in gateway.gateway.sessions)
    await caller.close()
    await bot.stop()
    assert len(gateway.gateway.sessions) == 0


async def test_two_callers_at_once_each_get_their_own_call(
    bot: Bot, gateway: GatewayServer, tts: Synthesizer
) -> None:
    callers = [SimulatedCaller(gateway.url, tts, user=f"caller{i}") for i in (1, 2)]
    try:

        async def one(caller: SimulatedCaller, digit: str) -> None:
            await caller.dial("5550001000")
            await caller.hear_prompt()
            await caller.press(digit)
            await caller.hear_prompt()
            await caller.hangup()

        await asyncio.gather(one(callers[0], "1"), one(callers[1], "2"))
        await bot.wait_records(2, timeout_s=10)
    finally:
        for caller in callers:
            await caller.close()
    got = {r.caller: r.digits for r in bot.records}
    assert got == {"caller1@ivrbot.local": "1", "caller2@ivrbot.local": "2"}
    assert len(bot.phones) >= 2  # a second session took the second call
