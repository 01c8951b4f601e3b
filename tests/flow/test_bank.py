"""The bank example flow end to end: a balance by account number, and an agent who does not
answer (voicemail). Real gateway, aiortc, espeak-ng and the Korean vosk model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import vosk

from ivrbot.flow import FlowCall, Transfer
from ivrbot.flow.check import check_flow
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import rms_dbfs
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import tone_dbfs
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer
from tests.flow.test_transfer_steps import AGENT, agent_phone

BANK = Path(__file__).resolve().parents[2] / "flows" / "bank.py"


@pytest.fixture
async def bot(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model, tmp_path: Path
) -> AsyncIterator[Bot]:
    flow = load_flow_file(BANK)
    agent_step = flow.steps["agent"]
    assert isinstance(agent_step, Transfer)
    agent_step.timeout_s = 2.0  # a test waits 2 s for the agent, not 15
    bot = Bot(flow, gateway.url, tts, model, recordings=tmp_path / "recordings")
    await bot.start()
    yield bot
    await bot.stop()


@pytest.fixture
async def caller(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[SimulatedCaller]:
    caller = SimulatedCaller(gateway.url, tts)
    yield caller
    await caller.close()


async def heard_beep(caller: SimulatedCaller, timeout_s: float = 30.0) -> None:
    """Wait for the end of the record beep: a run of 20 ms frames that are mostly 1000 Hz
    (speech has some energy at 1000 Hz too; the beep is all of it)."""
    seen, run = 0, 0
    async with asyncio.timeout(timeout_s):
        while True:
            await asyncio.sleep(0.05)
            frames, seen = caller.ear.audio[seen:], len(caller.ear.audio)
            for frame in frames:
                if tone_dbfs(frame, 1000) > max(-30.0, rms_dbfs(frame)):
                    run += 1
                elif run >= 5:
                    return
                else:
                    run = 0


def saved(path: str) -> bool:
    return Path(path).stat().st_size > 1000


async def until(done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not done():
            await asyncio.sleep(0.05)


def current(bot: Bot) -> FlowCall:
    (entry,) = bot.active.values()
    return entry[0]


@pytest.mark.unit
def test_the_flow_checks_clean() -> None:
    flow = load_flow_file(BANK)
    assert flow.numbers == ["5550001010"] and check_flow(flow) == []


@pytest.mark.e2e
async def test_balance_by_account_number(bot: Bot, caller: SimulatedCaller) -> None:
    await caller.dial("5550001010")
    await asyncio.sleep(1.0)
    await caller.press("1")  # while the menu is still playing: it stops (barge-in)
    flow_call = current(bot)
    await until(lambda: flow_call.record.path[-1:] == ["account"])
    await asyncio.sleep(1.0)
    await caller.press("123456#")
    await until(lambda: flow_call.record.path[-1:] == ["more"])  # after the balance
    await asyncio.sleep(0.5)
    await caller.hangup()
    await bot.wait_records(timeout_s=15)
    record = bot.records[0]
    assert record.path[:5] == ["defaults", "menu", "account", "balance", "more"], record.error
    assert "The balance of account 1 2 3 4 5 6 is 1523 dollars and 40 cents." in record.prompts
    # the '#' after six digits ended the entry; it is not an answer to the next menu; the
    # account number (secret=True) is on record by its length only: the flow had it
    assert [(i["outcome"], i["value"], i["masked"]) for i in record.inputs] == [
        ("dtmf", "1", False),
        ("dtmf", "<6 digits>", True),
    ]
    assert bot.finished[0].vars["account_number"] == "123456"


@pytest.mark.e2e
async def test_no_agent_answers_so_the_caller_leaves_a_voicemail(
    bot: Bot,
    caller: SimulatedCaller,
    gateway: GatewayServer,
    tmp_path: Path,
) -> None:
    agent = await agent_phone(gateway, answer_after_s=None)  # logged in, never answers
    try:
        await caller.dial("5550001010")
        await asyncio.sleep(1.0)
        await caller.press("2")  # an agent (the menu stops: barge-in)
        flow_call = current(bot)
        async with asyncio.timeout(10):
            await agent.rang.wait()
            await agent.canceled.wait()  # 2 s later the bot gave up
        await heard_beep(caller)  # the apology, the voicemail prompt and its beep
        await caller.say("안녕하세요")
        await caller.press("#")
        await until(lambda: flow_call.record.path[-1:] == ["thanks"])
        await caller.hangup()
        await bot.wait_records(timeout_s=15)
    finally:
        await agent.phone.close()
    record = bot.records[0]
    assert record.path == ["defaults", "menu", "agent", "voicemail", "thanks"], record.error
    assert (record.inputs[0]["outcome"], record.inputs[0]["value"]) == ("dtmf", "2")
    (transfer,) = record.transfers
    assert transfer["target"] == AGENT and transfer["mode"] == "warm"
    assert transfer["outcome"] == "no-answer"
    assert "Sorry, all our agents are busy." in record.prompts
    (path,) = record.recordings
    assert Path(path).parent == tmp_path / "recordings" / "bank" and saved(path)
    message = bot.finished[0].vars["voicemail"]
    assert message.outcome == "recorded" and message.ended_by == "finish-key"
    assert record.to_dict()["transfers"] == [transfer]
