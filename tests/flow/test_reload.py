"""Hot reload in ivrbot run: a call in progress finishes on the old flow, a new call gets
the new one."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from ivrbot.config import Settings
from ivrbot.serve import Runner
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OLD = "Welcome to ivrbot. Press a key, or say a word."
NEW = "Hello again. This is the new version."


async def test_call_in_progress_keeps_old_flow_new_call_gets_new(
    tmp_path: Path, tts: Synthesizer
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    # the first caller waits through the reload: give every question a minute, not 5 s
    patient = (
        (ROOT / "flows" / "welcome.py")
        .read_text()
        .replace("choices=CHOICES,", "choices=CHOICES, timeout_s=60,")
    )
    (flows / "welcome.py").write_text(patient)
    runner = Runner(flows, Settings(port=0, db=str(tmp_path / "ivrbot.db")))
    url = await runner.start()
    watcher = asyncio.ensure_future(runner.watch(interval_s=0.2))
    first, second = (
        SimulatedCaller(url, tts, user="first"),
        SimulatedCaller(url, tts, user="second"),
    )
    try:
        await first.dial("5550001000")
        await first.hear_prompt()  # the old greeting

        source = (flows / "welcome.py").read_text()
        assert OLD in source
        (flows / "welcome.py").write_text(source.replace(OLD, NEW))
        bot = next(iter(runner.bots.values()))
        async with asyncio.timeout(10):
            while NEW not in bot.flow.prompts():
                await asyncio.sleep(0.1)

        await second.dial("5550001000")
        await second.hear_prompt()
        await first.press("5")  # the first call goes on, on the old flow
        await first.hear_prompt()
        await second.press("6")
        await second.hear_prompt()
        await first.hangup()
        await second.hangup()
        await bot.wait_records(2, timeout_s=10)
    finally:
        watcher.cancel()
        await first.close()
        await second.close()
        await runner.stop()
    by_caller = {r.caller.split("@")[0]: r for r in bot.records}  # data: alice@ivrbot.local
    assert by_caller["first"].prompts[0] == OLD and by_caller["first"].digits == "5"
    assert by_caller["second"].prompts[0] == NEW and by_caller["second"].digits == "6"
    assert "You pressed 5." in by_caller["first"].prompts


async def test_a_broken_edit_keeps_the_running_flow(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "welcome.py", flows / "welcome.py")
    runner = Runner(flows, Settings(port=0, db=str(tmp_path / "ivrbot.db")))
    await runner.start()
    try:
        bot = next(iter(runner.bots.values()))
        before = bot.flow
        (flows / "welcome.py").write_text("this is not python(\n")
        assert await runner.reload_changed() == []
        assert bot.flow is before
    finally:
        await runner.stop()
