"""A step that fails: the caller hears an apology, the flow goes to its error step or hangs
up cleanly, and the record names the flow file and line.

Where the flow goes and what its record says is logic: the flow test kit proves it (unit).
A real call proves the caller hears the apology, and ``ivrbot call`` reports the failure."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import textwrap
from pathlib import Path

import pytest

from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SPEECH_DB
from ivrbot.testing.flowtest import FlowTest
from ivrbot.wire.server import GatewayServer
from tests.flow.calling import call_once

APOLOGY = "We are sorry, that did not work."


def write_flow(folder: Path, on_error: str | None, returns: str = "raise") -> Path:
    body = (
        "    raise KeyError('balance')  # the failing line\n"
        if returns == "raise"
        else f"    return {returns!r}\n"
    )
    source = (
        textwrap.dedent(f"""\
        from ivrbot.flow import Flow, Hangup, Say

        flow = Flow("fragile", number="5550001020", apology={APOLOGY!r},
                    on_error={on_error!r})
        flow.add(Say("hello", "Hello."))

        @flow.step("lookup", goes_to=["bye"])
        async def lookup(call):
        """)
        + body
        + textwrap.dedent("""\

        flow.add(Hangup("bye", "Goodbye."))
        """)
    )
    if on_error:
        source += f'flow.add(Hangup({on_error!r}, "Please call again later."))\n'

    path = folder / "fragile.py"
    path.write_text(source)
    return path


async def call_through(gateway: GatewayServer, tts: Synthesizer, path: Path) -> tuple[float, Bot]:
    """Call the flow and listen until the bot hangs up: how long the caller heard speech
    (first to last loud frame), and the bot."""
    caller, bot = await call_once(gateway, tts, path, "5550001020")
    loud = [t for t, db in caller.ear.levels if db > SPEECH_DB]
    return (loud[-1] - loud[0] if loud else 0.0), bot


async def seconds(tts: Synthesizer, *texts: str) -> float:
    prompts = [await tts.synth(text, "en") for text in texts]
    return sum(p.pcm.size / p.sample_rate for p in prompts)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.e2e
async def test_a_failing_step_apologises_and_goes_to_the_error_step(
    gateway: GatewayServer, tts: Synthesizer, tmp_path: Path
) -> None:
    path = write_flow(tmp_path, on_error="sorry")
    heard, bot = await call_through(gateway, tts, path)
    record = bot.records[0]
    assert record.path == ["hello", "lookup", "sorry"]
    assert record.prompts == ["Hello.", APOLOGY, "Please call again later."]
    assert record.outcome == "error"
    assert f"{path}:{line_of(path, 'the failing line')}" in record.error
    assert "KeyError" in record.error and "step lookup" in record.error
    # the caller heard all three prompts
    assert heard > await seconds(tts, "Hello.", APOLOGY, "Please call again later.") - 0.6


@pytest.mark.unit
async def test_without_an_error_step_the_bot_apologises_and_hangs_up(tmp_path: Path) -> None:
    result = await FlowTest(write_flow(tmp_path, on_error=None)).run_async()
    assert result.path == ["hello", "lookup"]
    assert result.prompts == ["Hello.", APOLOGY] and result.outcome == "error"
    assert result.hung_up_by == "bot" and result.error_step == "lookup"


@pytest.mark.unit
async def test_a_step_that_returns_an_unknown_step_names_its_line(tmp_path: Path) -> None:
    path = write_flow(tmp_path, on_error=None, returns="nowhere")
    result = await FlowTest(path).run_async()
    assert result.outcome == "error"
    assert "'nowhere'" in result.error
    assert f"{path}:{line_of(path, '@flow.step')}" in result.error


@pytest.mark.unit
async def test_a_step_that_returns_a_step_outside_its_goes_to_fails_at_its_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_flow(tmp_path, on_error=None, returns="hello")  # a step, but not in goes_to
    with caplog.at_level(logging.INFO):
        result = await FlowTest(path).run_async()
    assert result.path == ["hello", "lookup"], "the flow went where goes_to does not allow"
    assert result.outcome == "error"
    where = f"{path}:{line_of(path, '@flow.step')}"
    assert result.error == (
        f"step lookup: {where}: step 'lookup' returned 'hello', which is not in its goes_to "
        "['bye']: return one of those, or add it to goes_to"
    )
    assert result.prompts == ["Hello.", APOLOGY] and result.hung_up_by == "bot"
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in failures] == [
        f"flow fragile failed in step lookup: {result.error.removeprefix('step lookup: ')}"
    ]
    assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.INFO)


@pytest.mark.e2e
async def test_ivrbot_call_reports_the_failed_flow_and_exits_1(
    gateway: GatewayServer, tts: Synthesizer, tmp_path: Path
) -> None:
    """``ivrbot call`` on the machine of the gateway (and of its store) says the flow failed,
    as its record does, though the caller only heard an apology and a hang-up."""
    path = write_flow(tmp_path, on_error=None, returns="nowhere")
    bot = Bot(load_flow_file(path), gateway.url, tts, store=gateway.gateway.store)
    await bot.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ivrbot", "call", "5550001020", "--gateway", gateway.url,
            "--json", cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "IVRBOT_DB": str(tmp_path / "gateway.db")},
        )  # fmt: skip
        async with asyncio.timeout(90):
            out, err = await proc.communicate()
        (record,) = await bot.wait_records()
    finally:
        await bot.stop()
    assert record.outcome == "error"
    assert proc.returncode == 1, err.decode()[-2000:]
    result = json.loads(out)
    assert result["result"] == "failed"
    assert result["problems"] == [f"the flow failed: {record.error}"]
    assert f"{path}:{line_of(path, '@flow.step')}: step 'lookup' returned 'nowhere'" in (
        record.error
    )
    assert "Traceback" not in err.decode()
