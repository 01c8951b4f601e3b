"""Call records: every call through a flow lands in the store; ivrbot calls shows it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import vosk

from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.store.sqlite import SqliteStore
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def ivrbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrbot", *args], capture_output=True, text=True, cwd=ROOT,
        timeout=60,
    )  # fmt: skip


async def test_record_is_stored_and_listed(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model, tmp_path: Path
) -> None:
    db = tmp_path / "records.db"
    store = SqliteStore(db)
    bot = Bot(load_flow_file(ROOT / "flows" / "welcome.py"), gateway.url, tts, model, store=store)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial("5550001000")
        await caller.hear_prompt()
        await caller.press("3")
        await caller.hear_prompt()
        await caller.hangup()
        await bot.wait_records(timeout_s=10)
    finally:
        await caller.close()
        await bot.stop()
        await store.close()

    listed = ivrbot("calls", "list", "--db", str(db), "--json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert len(records) == 1
    record = records[0]
    assert record["flow"] == "welcome" and record["caller"] == "caller@ivrbot.local"
    assert record["inputs"][0]["value"] == "3" and record["outcome"] == "caller-hangup"
    shown = ivrbot("calls", "show", record["id"][:6], "--db", str(db))
    assert shown.returncode == 0, shown.stderr
    assert "menu -> confirm -> more" in shown.stdout and "You pressed 3." in shown.stdout
    missing = ivrbot("calls", "show", "nope", "--db", str(db))
    assert missing.returncode == 1 and "no call record 'nope'" in missing.stderr
