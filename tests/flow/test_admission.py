"""Bots inside the gateway: a burst of callers all answered, and past a flow's limit a
queue (ringback) and then busy; every call on record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ivrbot.config import Settings
from ivrbot.media.tones import RINGBACK_HZ
from ivrbot.serve import Runner
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import tone_dbfs
from ivrbot.testing.caller import NotAnswered, SimulatedCaller

pytestmark = pytest.mark.e2e

MENU = """\
from ivrbot.flow import Ask, Flow, Hangup
flow = Flow("menu", number="5550001050"{extra})
flow.add(Ask("menu", "Welcome. Press a key.", digits=1, timeout_s=10, next="bye"),
         Hangup("bye", "Thank you. Goodbye."))
"""


async def serve(tmp_path: Path, extra: str = "", **settings: object) -> Runner:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "menu.py").write_text(MENU.format(extra=extra))
    config = Settings(port=0, db=str(tmp_path / "ivrbot.db"), **settings)  # type: ignore[arg-type]
    runner = Runner(flows, config)
    await runner.start()
    return runner


@pytest.fixture
async def burst_server(tmp_path: Path) -> AsyncIterator[Runner]:
    runner = await serve(tmp_path)
    yield runner
    await runner.stop()


async def run_menu(url: str, tts: Synthesizer, name: str) -> str:
    """Dial, hear the welcome, press 5, hear the goodbye: 'ok' or what went wrong."""
    caller = SimulatedCaller(url, tts, user=name)
    try:
        await caller.dial("5550001050", timeout_s=40)
        await caller.hear_prompt(silence_s=0.5)
        await caller.press("5")
        async with asyncio.timeout(30):
            await caller.disconnected.wait()
        return "ok"
    except NotAnswered as exc:
        return f"not answered: {exc}"
    finally:
        await caller.close()


async def test_a_burst_of_callers_is_all_answered(burst_server: Runner, tts: Synthesizer) -> None:
    url = burst_server.server.url
    results = await asyncio.gather(*(run_menu(url, tts, f"c{i}") for i in range(10)))
    assert results == ["ok"] * 10
    bot = next(iter(burst_server.bots.values()))
    assert sorted(r.digits for r in bot.records) == ["5"] * 10
    assert {r.outcome for r in bot.records} == {"completed"}
    assert all(c.media is None or c.media.kind == "local" for p in bot.phones for c in p.calls)
    log = await burst_server.server.gateway.store.call_log()
    assert [e.outcome for e in log] == ["completed"] * 10


async def test_past_the_limit_callers_wait_with_ringback_then_hear_busy(
    tmp_path: Path, tts: Synthesizer
) -> None:
    runner = await serve(tmp_path, extra=", max_calls=1", queue_s=4.0)
    url = runner.server.url
    first = SimulatedCaller(url, tts, user="first")
    second = SimulatedCaller(url, tts, user="second")
    third = SimulatedCaller(url, tts, user="third")
    try:
        await first.dial("5550001050")
        await first.hear_prompt(silence_s=0.5)
        # the flow is at its limit: the second caller is queued and hears ringback
        waiting = asyncio.ensure_future(second.dial("5550001050", timeout_s=30))
        await asyncio.sleep(2.0)
        assert not waiting.done()
        assert tone_dbfs(np.concatenate(second.ear.audio), RINGBACK_HZ[0]) > -40
        # the first call ends: the queued caller goes in
        await first.press("5")
        await asyncio.wait_for(waiting, 20)
        await second.hear_prompt(silence_s=0.5)
        # a third caller while the second is in: turned away after the queue time
        with pytest.raises(NotAnswered, match="User busy"):
            await third.dial("5550001050", timeout_s=20)
        await second.press("5")
        async with asyncio.timeout(20):
            await second.disconnected.wait()
        bot = next(iter(runner.bots.values()))
        await bot.wait_records(2)
        log = await runner.server.gateway.store.call_log()
        assert sorted(e.outcome for e in log) == ["busy", "completed", "completed"]
    finally:
        for caller in (first, second, third):
            await caller.close()
        await runner.stop()
