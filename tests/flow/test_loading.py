"""One bad flow file does not stop the others: good flows are served, a bad one is reported
and tried again when it changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ivrbot.config import Settings
from ivrbot.serve import Runner
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller

pytestmark = pytest.mark.e2e


def flow_source(name: str, number: str) -> str:
    return (
        "from ivrbot.flow import Flow, Hangup\n"
        f"flow = Flow({name!r}, number={number!r})\n"
        f"flow.add(Hangup('bye', 'This is the flow called {name}. Goodbye.'))\n"
    )


async def reaches(url: str, tts: Synthesizer, number: str) -> float:
    """Call ``number`` until the bot hangs up: how long the caller heard it speak."""
    caller = SimulatedCaller(url, tts)
    try:
        await caller.dial(number)
        async with asyncio.timeout(15):
            await caller.disconnected.wait()
    finally:
        await caller.close()
    loud = [t for t, db in caller.ear.levels if db > SPEECH_DB]
    return loud[-1] - loud[0] if loud else 0.0


async def test_good_flows_are_served_beside_a_bad_one(tmp_path: Path, tts: Synthesizer) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "good.py").write_text(flow_source("good", "5550001031"))
    (flows / "broken.py").write_text("from ivrbot.flow import Flow\nflow = Flow('broken',\n")
    (flows / "twin.py").write_text(flow_source("twin", "5550001031"))  # number taken
    runner = Runner(flows, Settings(port=0, db=str(tmp_path / "ivrbot.db")))
    await runner.start()
    try:
        assert [b.flow.name for b in runner.bots.values()] == ["good"]
        assert set(runner.broken) == {flows / "broken.py", flows / "twin.py"}
        assert "broken.py:" in runner.broken[flows / "broken.py"]
        assert "syntax error" in runner.broken[flows / "broken.py"]
        assert "already answered by flow 'good'" in runner.broken[flows / "twin.py"]
        assert await reaches(runner.server.url, tts, "5550001031") > 0.5

        (flows / "broken.py").write_text(flow_source("mended", "5550001032"))
        assert await runner.reload_changed() == ["mended"]
        assert flows / "broken.py" not in runner.broken
        assert await reaches(runner.server.url, tts, "5550001032") > 0.5
        assert await runner.reload_changed() == []  # nothing changed since
    finally:
        await runner.stop()
