"""``ivrbot call``: a scripted caller run as a user runs it, against a real gateway and bot."""

from __future__ import annotations

import json
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import vosk
from click.testing import CliRunner

from ivrbot import cli
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import rms_dbfs
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine
from ivrbot.testing.caller import SPEECH_DB
from ivrbot.wire.server import GatewayServer
from tests.helpers import free_port, run_ivrbot
from tests.test_cli import ROOT

WELCOME = ROOT / "flows" / "welcome.py"


@pytest.fixture
async def welcome(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model
) -> AsyncIterator[Bot]:
    bot = Bot(load_flow_file(WELCOME), gateway.url, tts, model)
    await bot.start()
    yield bot
    await bot.stop()


async def ivrbot_call(*args: str, timeout: float = 90) -> tuple[int, str, str]:
    return await run_ivrbot("call", *args, timeout=timeout)


def one_line_error(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("ivrbot: error: ")
    return lines[0]


@pytest.mark.e2e
async def test_call_presses_a_key_and_records_what_it_heard(
    welcome: Bot, gateway: GatewayServer, tmp_path: Path
) -> None:
    wav = tmp_path / "out.wav"
    code, out, err = await ivrbot_call(
        "5550001000", "--gateway", gateway.url, "--press", "5", "--json", "--record", str(wav)
    )
    assert code == 0, err[-2000:]
    result = json.loads(out)  # stdout is exactly one JSON object
    assert result["result"] == "completed", result["problems"]
    events = [(e["party"], e["event"]) for e in result["events"]]
    assert ("caller", "call:connected") in events
    assert all({"t_ms", "party", "event"} <= set(e) for e in result["events"])
    presses = [e for e in result["events"] if e["event"] == "press"]
    assert [e["digits"] for e in presses] == ["5"]
    sent = [e["tone"] for e in result["events"] if e["event"] == "dtmf:tone-sent"]
    assert sent == ["5"]
    # the greeting before the press, and the bot's answer to it after
    heard_prompts = result["heard_prompts"]
    assert len(heard_prompts) >= 2 and heard_prompts[0]["seconds"] > 1.0
    # the gateway's store is not this command's IVRBOT_DB here: lengths, no text made up
    assert all(h["text"] == "" for h in heard_prompts)
    heard = [e["t_ms"] for e in result["events"] if e["event"] == "heard prompt"]
    assert heard[0] <= presses[0]["t_ms"] < heard[1]
    assert result["recording"] == str(wav)

    await welcome.wait_records(timeout_s=10)
    record = welcome.records[0]
    assert record.digits == "5"
    assert "You pressed 5." in record.prompts

    with wave.open(str(wav), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 16000)
        pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    assert pcm.size / 16000 == pytest.approx(result["recorded_s"], abs=0.1)
    levels = [rms_dbfs(pcm[i : i + 320]) for i in range(0, pcm.size - 320, 320)]
    loud_s = sum(db > SPEECH_DB for db in levels) * 0.02
    assert loud_s > 2.0, f"the recording holds only {loud_s:.1f} s of speech"
    assert gateway.gateway.switch.calls == {}


@pytest.mark.e2e
async def test_steps_say_and_play_in_the_order_given(
    welcome: Bot, gateway: GatewayServer, tmp_path: Path
) -> None:
    beep = tmp_path / "beep.wav"
    with wave.open(str(beep), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes(sine(600, 0.3, rate=8000).tobytes())
    code, out, err = await ivrbot_call(
        "5550001000", "--gateway", gateway.url, "--say", "메뉴", "--play", str(beep),
        "--wait", "1", "--json",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    result = json.loads(out)
    steps = [e["event"] for e in result["events"] if e["event"] in ("say", "play", "listen")]
    assert steps == ["say", "play", "listen"]
    await welcome.wait_records(timeout_s=10)
    assert welcome.records[0].speech == ["menu"]


@pytest.mark.contract
async def test_no_gateway_listening_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = await ivrbot_call("5550001000", "--gateway", url, "--press", "5")
    line = one_line_error(code, err)
    assert url in line and "ivrbot run" in line and "--gateway" in line
    assert out == ""


@pytest.mark.e2e
async def test_a_number_nobody_answers_is_one_line(gateway: GatewayServer) -> None:
    code, _, err = await ivrbot_call("5550001099", "--gateway", gateway.url)
    line = one_line_error(code, err)
    assert "5550001099" in line and "not answered" in line
    assert gateway.gateway.switch.calls == {}


@pytest.mark.contract
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--press", "5x"], "--press"),
        (["--play", "no-such-file.wav"], "no-such-file.wav"),
        (["--play", "README.md"], "16-bit PCM WAV"),
        (["--record", "/no/such/dir/out.wav"], "--record"),
    ],
)
async def test_bad_input_is_one_line_before_dialling(args: list[str], named: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # never reached: the input is checked first
    code, _, err = await ivrbot_call("5550001000", "--gateway", url, *args)
    assert named in one_line_error(code, err)


@pytest.mark.unit
def test_steps_keep_their_command_line_order(monkeypatch: pytest.MonkeyPatch) -> None:
    from ivrbot import scripted_call

    seen: list[Any] = []

    async def fake_run(script: scripted_call.CallScript) -> scripted_call.ScriptResult:
        seen.append(script)
        return scripted_call.ScriptResult("completed", script.destination, "", [], [], None, 0.0)

    monkeypatch.setattr(scripted_call, "run_script", fake_run)
    monkeypatch.setenv("IVRBOT_GATEWAY", "http://gw.example:1")
    args = ["call", "5550001000", "--press", "1", "--say", "메뉴", "--press=2", "--play", "a.wav"]
    result = CliRunner().invoke(cli.main, [*args, "--json", "--user", "pat"])
    assert result.exit_code == 0, result.output
    script = seen[0]
    assert [(s.kind, s.value) for s in script.steps] == [
        ("press", "1"), ("say", "메뉴"), ("press", "2"), ("play", "a.wav"),
    ]  # fmt: skip
    assert script.gateway == "http://gw.example:1" and script.user == "pat"
    assert script.wait_s is None and script.record is None
