"""A new step type is one class in one file (tests/flow/fixtures/tone_flow.py: ``Tone``):
``flows check`` checks it, ``flows graph`` draws it, and a real call runs it."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from ivrbot.flow import Flow, Hangup, Say
from ivrbot.flow.check import check_flow
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.loader import load_flow_file
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import loudest_window, tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.flow.calling import call_once
from tests.flow.pictures import SVG, step_ids

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = Path(__file__).parent / "fixtures" / "tone_flow.py"
HEARD_DB = -30.0


@pytest.mark.contract
def test_the_new_step_is_checked(tmp_path: Path) -> None:
    flow = load_flow_file(FIXTURE, check_model=False)
    assert check_flow(flow) == []
    tone = type(flow.steps["beep"])
    bad = Flow("t", number="5550001001")
    bad.add(Say("hi", "Hi"), tone("beep", hz=50, next="nowhere"), Hangup("bye"))  # type: ignore[call-arg]
    assert [str(p) for p in check_flow(bad)] == [
        "error: step 'beep': goes to unknown step 'nowhere' (next)",
        "error: step 'beep': hz must be from 100 to 4000 (a phone carries it), not 50",
        "error: step 'bye': unreachable from the start step 'hi'",
    ]
    # and through the command line, in a copy of the fixture with a step that goes nowhere
    copy = tmp_path / "tones.py"
    copy.write_text(FIXTURE.read_text().replace('next="bye"', 'next="gone"'))
    proc = subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "check", str(copy)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert f"{copy}: flow 'tones': error: step 'beep': goes to unknown step 'gone'" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.contract
def test_the_new_step_is_drawn() -> None:
    flow = load_flow_file(FIXTURE, check_model=False)
    picture = svg(flow)
    assert step_ids(picture) == {"step-hello", "step-beep", "step-bye"}
    root = ET.fromstring(picture)
    (box,) = (g for g in root.iter(f"{SVG}g") if g.get("id") == "step-beep")
    assert [t.text for t in box.iter(f"{SVG}text")] == ["beep", "Tone", "1400 Hz for 0.8 s"]
    shape = box.find(f"{SVG}path")
    assert shape is not None and shape.get("fill") == type(flow.steps["beep"]).colour
    top = root.find(f"{SVG}g")
    assert top is not None and "Tone" in [t.text for t in top.findall(f"{SVG}text")]  # legend
    chart = mermaid(flow)
    assert 's2["beep<br/><i>Tone</i> 1400 Hz for 0.8 s"]' in chart
    assert "s1 --> s2" in chart and "s2 --> s0" in chart  # hello -> beep -> bye


@pytest.mark.e2e
async def test_the_new_step_runs_in_a_call(gateway: GatewayServer, tts: Synthesizer) -> None:
    caller, bot = await call_once(gateway, tts, FIXTURE, "5550001060")
    (record,) = bot.records
    # the explicit start step ('hello', not 'bye' that was added first), then the new step
    assert record.path == ["hello", "beep", "bye"]
    assert record.outcome == "completed"
    heard = loudest_window(np.concatenate(caller.ear.audio), 1400)  # where the tone is
    tone = tone_dbfs(heard, 1400)  # its own level (the step plays it at -12 dBFS)
    assert tone > HEARD_DB, "the caller did not hear the tone"
    assert tone_dbfs(heard, 2300) < tone - 20, "what the caller heard is not a 1400 Hz tone"
