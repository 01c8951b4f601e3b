"""A flow that answers after N rings: the caller hears ringback until the bot answers."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ivrbot.flow import Flow, FlowError, Hangup
from ivrbot.flow.runner import Bot
from ivrbot.media.tones import RINGBACK_HZ
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import tone_dbfs
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer


def ringing_flow(number: str) -> Flow:
    flow = Flow("rings", number=number, rings=2)
    flow.ring_s = 1.0  # a short ring for the test (6 s in use)
    flow.add(Hangup("bye", "Hello and goodbye."))
    return flow


@pytest.mark.e2e
async def test_the_bot_answers_after_two_rings_and_the_caller_hears_ringback(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    bot = Bot(ringing_flow("5550001094"), gateway.url, tts)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        began = time.monotonic()
        await caller.dial("5550001094")
        waited = time.monotonic() - began
        assert waited >= 2.0, f"answered after {waited:.2f} s, before two rings"
        before = np.concatenate(caller.ear.audio)  # early media: what rang before the answer
        assert tone_dbfs(before, RINGBACK_HZ[0]) > -35.0, "the caller heard ringback"
        async with asyncio.timeout(20):
            await caller.disconnected.wait()
        await bot.wait_records()
        assert [r.outcome for r in bot.records] == ["completed"]
    finally:
        await caller.close()
        await bot.stop()


@pytest.mark.e2e
async def test_a_caller_who_hangs_up_while_it_rings_is_not_answered(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    bot = Bot(ringing_flow("5550001095"), gateway.url, tts)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        with pytest.raises(TimeoutError):
            await caller.dial("5550001095", timeout_s=0.8)  # gives up after one ring
        await caller.phone.cancel()
        await asyncio.sleep(2.0)  # past the second ring
        (record,) = bot.records  # a missed call is on record, not answered
        assert record.outcome == "abandoned" and record.path == [] and not bot.active
        assert gateway.gateway.switch.calls == {}
    finally:
        await caller.close()
        await bot.stop()


@pytest.mark.unit
def test_rings_must_be_a_whole_number() -> None:
    with pytest.raises(FlowError, match="rings must be a whole number"):
        Flow("bad", number="5550001096", rings=-1)
