"""A gateway out of development mode, as ``ivrbot call`` and ``ivrbot dial`` meet it: with an
API key (``--api-key`` or ``IVRBOT_API_KEY``) they work; without one they say so in one line
(the gateway runs: they never blame a missing gateway). The caller's report names the
prompts it heard, the last one too when the bot hung up right after it."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.speech.tts import Synthesizer
from tests.helpers import run_ivrbot
from tests.test_call_cli import one_line_error

SECRET = "operator-secret-0123456789"
KEY = "app-server-key-0123456789"
NUMBER = "5550001096"
FRONT = f"""\
from ivrbot.flow import Flow, Hangup, Menu, Retry
flow = Flow("front", number="{NUMBER}", retry=Retry(attempts=1))
flow.add(Menu("ask", "Press 1 for sales.", options={{"1": "sales"}}, no_input="closed"))
flow.add(Hangup("sales", "Sales is closed today. Goodbye."))
flow.add(Hangup("closed", "Sales is closed today. Goodbye."))  # nobody chose: said the same
"""
NEEDS_KEY = (
    "ivrbot: error: 401: this gateway needs an API key: pass --api-key or set IVRBOT_API_KEY "
    "(one of the gateway's IVRBOT_API_KEYS)"
)


@pytest.fixture
async def locked(tmp_path: Path, tts: Synthesizer) -> AsyncIterator[Parts]:
    """``ivrbot run`` out of development mode (a client secret and an API key set), serving
    the front flow."""
    settings = Settings(
        port=0, db=str(tmp_path / "gateway.db"), recordings=tmp_path / "rec",
        client_secret=SECRET, api_keys=[KEY], dev_mode="off",
    )  # fmt: skip
    assert not settings.development
    (tmp_path / "front.py").write_text(FRONT)
    async with assemble(settings, tts=tts) as parts:
        await parts.serve(load_flow_file(tmp_path / "front.py"))
        yield parts


async def ivrbot(parts: Parts, *args: str, timeout: float = 90, **env: str) -> tuple[int, str, str]:
    """The command, as a user on the gateway's machine runs it (the same IVRBOT_DB; no
    credentials in the environment but ``env``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IVRBOT_")}
    env = {**clean, "IVRBOT_DB": parts.settings.db, "NO_COLOR": "1", "COLUMNS": "200", **env}
    return await run_ivrbot(*args, env=env, timeout=timeout)


@pytest.mark.contract  # refused before any call
async def test_without_an_api_key_the_call_says_to_pass_one(locked: Parts) -> None:
    code, out, err = await ivrbot(locked, "call", NUMBER, "--gateway", locked.url)
    assert one_line_error(code, err) == NEEDS_KEY
    assert "no ivrbot gateway" not in err and out == ""
    code, _, err = await ivrbot(locked, "call", NUMBER, "--gateway", locked.url,
                                "--api-key", "not-one-of-its-keys")  # fmt: skip
    line = one_line_error(code, err)
    assert line.startswith("ivrbot: error: 401: this gateway refused the API key")
    assert "unknown API key" in line and "--api-key" in line
    assert locked.gateway.switch.calls == {}


@pytest.mark.contract  # refused before any call
async def test_dial_without_credentials_says_what_to_give(locked: Parts, tmp_path: Path) -> None:
    flow = tmp_path / "front.py"
    code, _, err = await ivrbot(locked, "dial", str(flow), "5550001099", "--gateway", locked.url)
    assert one_line_error(code, err) == NEEDS_KEY


@pytest.mark.e2e
async def test_an_api_key_call_hears_the_prompts_by_their_text(locked: Parts) -> None:
    code, out, err = await ivrbot(
        locked, "call", NUMBER, "--gateway", locked.url, "--api-key", KEY, "--press", "1",
        "--json",
    )  # fmt: skip
    assert code == 0, err[-2000:]
    result = json.loads(out)
    assert result["result"] == "completed", result["problems"]
    heard = result["heard_prompts"]
    # the goodbye too, though the bot hung up before the caller had waited it out
    assert [h["text"] for h in heard] == ["Press 1 for sales.", "Sales is closed today. Goodbye."]
    assert heard[0]["seconds"] > 0.5 and heard[1]["seconds"] > 1.0
    events = [e for e in result["events"] if e["event"] in ("heard prompt", "press")]
    assert [(e["event"], e.get("text")) for e in events] == [
        ("heard prompt", "Press 1 for sales."),
        ("press", None),
        ("heard prompt", "Sales is closed today. Goodbye."),
    ]


@pytest.mark.e2e
async def test_a_caller_who_only_listens_hears_the_prompts(locked: Parts) -> None:
    # IVRBOT_API_KEY in the environment; no step: the bot asks, hears nothing, says goodbye
    code, out, err = await ivrbot(
        locked, "call", NUMBER, "--gateway", locked.url, "--wait", "12", IVRBOT_API_KEY=KEY
    )
    assert code == 0, out + err[-2000:]
    lines = out.splitlines()
    summary = lines[lines.index("prompts heard:") :]
    assert "Press 1 for sales." in summary[1] and "s  " in summary[1]
    assert "Sales is closed today. Goodbye." in summary[2]
    assert "result: completed" in out
