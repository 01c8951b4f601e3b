"""What the operator of ``ivrbot run`` sees while a caller goes through the welcome flow:
one JSON log line per call event, /health and /metrics moving with the call, and a broken
flow file reported, then served once it is fixed. Real server process, real caller (aiortc
on 127.0.0.1), real espeak-ng and vosk."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller
from tests.test_cli import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
IVRBOT = [sys.executable, "-m", "ivrbot"]
BROKEN = (
    "from ivrbot.flow import Flow, Say\n"
    "flow = Flow('oops', number='5550001001')\n"
    "flow.add(Say('hi', 'Hello', next='nowhere'))\n"
)
FAILING = (  # loads, and fails in its step at line 5
    "from ivrbot.flow import Flow\n"
    "flow = Flow('oops', number='5550001001')\n"
    "@flow.step('hi')\n"
    "async def hi(call):\n"
    "    raise RuntimeError('the lookup failed')\n"
)


async def metrics(http: aiohttp.ClientSession, url: str) -> dict[tuple[str, str], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    async with http.get(f"{url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def health(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{url}/health") as response:
        return response.status, await response.json()


async def ready(
    http: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process
) -> tuple[int, dict[str, Any]]:
    """/health once the server answers it and serves the welcome flow."""
    async with asyncio.timeout(60):
        while True:
            assert proc.returncode is None, "ivrbot run exited early"
            try:
                status, body = await health(http, url)
            except aiohttp.ClientConnectionError:
                status, body = 0, {}
            if "welcome" in body.get("flows", {}).get("loaded", []):
                return status, body
            await asyncio.sleep(0.2)


class Stderr:
    """The server's stderr lines, collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Event()
        assert proc.stderr is not None
        self.task = asyncio.ensure_future(self._read(proc.stderr))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode())
            self.changed.set()

    async def wait_for(self, text: str, timeout_s: float = 20) -> None:
        async with asyncio.timeout(timeout_s):
            while not any(text in line for line in self.lines):
                self.changed.clear()
                await self.changed.wait()


async def test_operator_sees_every_call_event_health_and_metrics(
    tmp_path: Path, tts: Synthesizer
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "welcome.py", flows / "welcome.py")
    (flows / "oops.py").write_text(BROKEN)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        *IVRBOT, "run", str(flows), "--port", str(port), "--log-format", "json", cwd=ROOT,
        env={**os.environ, "IVRBOT_DB": str(tmp_path / "ivrbot.db")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stderr = Stderr(proc)
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await ready(http, url, proc)
            assert status == 503 and body["ok"] is False  # a flow file does not load
            assert body["flows"] == {"loaded": ["welcome"], "broken": [str(flows / "oops.py")]}
            assert body["calls_in_progress"] == 0
            before = await metrics(http, url)

            caller = SimulatedCaller(url, tts, user="pat")
            try:
                await caller.dial("5550001000")
                await caller.hear_prompt()  # the greeting
                status, body = await health(http, url)
                assert body["calls_in_progress"] == 1
                assert (await metrics(http, url))[("ivrbot_calls_in_progress", "")] == 1
                await caller.press("7")
                await caller.hear_prompt()  # "You pressed 7." and at once "Anything else?"
                await caller.say("메뉴")
                await caller.hear_prompt()  # "You said menu."
                await caller.hangup()
            finally:
                await caller.close()
            await stderr.wait_for('"event": "call-end"')
            await stderr.wait_for('"event": "flow-end"')
            after = await metrics(http, url)

            (flows / "oops.py").write_text(FAILING)
            await stderr.wait_for("now serving flow oops")
            status, body = await health(http, url)
            assert status == 200 and body["ok"] is True
            assert body["flows"] == {"loaded": ["oops", "welcome"], "broken": []}
            caller = SimulatedCaller(url, tts, user="sam")
            try:
                await caller.dial("5550001001")
                async with asyncio.timeout(20):  # the apology, then the bot hangs up
                    await caller.disconnected.wait()
            finally:
                await caller.close()
            await stderr.wait_for('"flow": "oops", "outcome": "error"')
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
        await stderr.task
    finally:
        if proc.returncode is None:
            proc.kill()
        print("".join(stderr.lines))  # shown when the test fails

    # metrics: the call counted once, its latencies observed
    def grew(name: str, labels: str = "") -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    assert after[("ivrbot_calls_in_progress", "")] == 0
    assert grew("ivrbot_calls_total", "outcome=caller-hangup") == 1  # as flow-end says
    assert grew("ivrbot_flow_calls_total", "flow=welcome,outcome=caller-hangup") == 1
    assert grew("ivrbot_answer_to_prompt_seconds_count") == 1
    assert grew("ivrbot_key_to_prompt_seconds_count") == 1
    assert grew("ivrbot_asr_seconds_count") == 1
    assert grew("ivrbot_frame_lateness_seconds_count") > 100  # ~50 frames a second

    # logs: every stderr line is one JSON object with a time; no traceback
    text = "".join(stderr.lines)
    assert "Traceback" not in text
    lines = [json.loads(line) for line in stderr.lines]
    for line in lines:
        assert datetime.datetime.fromisoformat(line["time"]).tzinfo is not None
    broken = [x for x in lines if x["level"] == "error" and "oops.py" in x["message"]]
    assert broken and "nowhere" in broken[0]["message"]

    failed = next(x for x in lines if x.get("event") == "flow-end" and x["flow"] == "oops")
    assert f"{flows / 'oops.py'}:5" in failed["error"]  # the flow file and line
    assert "RuntimeError: the lookup failed" in failed["error"]
    oops_calls = {x["call"] for x in lines if x.get("flow") == "oops"}
    events = [x for x in lines if x["logger"] == "ivrbot.calls" and x["call"] not in oops_calls]
    names = [x["event"] for x in events]
    assert names[0] == "call-in" and "call-end" in names and names[-1] in ("call-end", "flow-end")
    assert {x["call"] for x in events} == {events[0]["call"]}  # one id for the call throughout
    call_in = events[0]
    assert call_in["number"] == "+15550001000" and call_in["caller"] == "pat@ivrbot.local"
    start = next(x for x in events if x["event"] == "flow-start")
    assert start["flow"] == "welcome" and "pat@" in start["caller"]
    assert [x["step"] for x in events if x["event"] == "step"][:4] == [
        "menu", "confirm", "more", "confirm",
    ]  # fmt: skip
    inputs = [(x["step"], x["outcome"], x["value"]) for x in events if x["event"] == "input"]
    assert inputs == [("menu", "dtmf", "7"), ("more", "speech", "menu")]
    end = next(x for x in events if x["event"] == "flow-end")
    assert end["outcome"] == "caller-hangup" and end["duration_s"] > 2
    call_end = next(x for x in events if x["event"] == "call-end")
    assert call_end["outcome"] == "caller-hangup" and call_end["duration_s"] > 2
