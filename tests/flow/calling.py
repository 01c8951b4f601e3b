"""One real call to a flow: a bot for the flow file, a simulated caller who listens until
the bot hangs up."""

from __future__ import annotations

import asyncio
from pathlib import Path

import vosk

from ivrbot.flow.flow import Flow
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer


async def call_once(
    gateway: GatewayServer,
    tts: Synthesizer,
    flow: Flow | Path,
    number: str,
    model: vosk.Model | None = None,
) -> tuple[SimulatedCaller, Bot]:
    """Call ``flow`` (or the flow of a file) at ``number`` until the bot hangs up and the
    call's record is kept; the caller (closed: what it heard is in ``caller.ear``) and the
    bot (stopped)."""
    bot = Bot(flow if isinstance(flow, Flow) else load_flow_file(flow), gateway.url, tts, model)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial(number)
        async with asyncio.timeout(30):
            await caller.disconnected.wait()
        await bot.wait_records()
    finally:
        await caller.close()
        await bot.stop()
    return caller, bot
