"""Transfer and Move steps: over real media, then their checks and drawing.

Real gateway, Bot and SimulatedCaller (aiortc on 127.0.0.1, espeak-ng), and an agent Phone
that answers (or does not). Who hears whom is measured on the audio each side received:
the caller plays 700 Hz, the agent 1300 Hz, the gateway's music on hold is HOLD_NOTES_HZ
(Goertzel, ivrbot/testing/audio.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from ivrbot.flow import Flow, FlowCall, Hangup, Move, Say, Set, Transfer, TransferResult
from ivrbot.flow.check import check_flow, flow_edges
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.runner import Bot
from ivrbot.flow.transfer_steps import fill
from ivrbot.media.frames import WIRE_RATE, rms_dbfs
from ivrbot.media.tones import HOLD_NOTES_HZ
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.caller import SPEECH_DB, Ear, SimulatedCaller
from ivrbot.wire.server import GatewayServer

AGENT = "agent@ivrbot.local"
CALLER_HZ, AGENT_HZ = 700.0, 1300.0
HEARD_DB = -32.0  # a party's tone arrives at about -14 dBFS; its absence is far below -48
SILENT_DB = -48.0


class Agent:
    """A person at agent@ivrbot.local: answers ``answer_after_s`` after the ring (None: never),
    then plays a 1300 Hz tone. ``ear`` is what they hear."""

    def __init__(self, url: str, answer_after_s: float | None) -> None:
        self.phone = Phone(url, name="agent")
        self.ear = Ear()
        self.answer_after_s = answer_after_s
        self.call: Call | None = None
        self.rang = asyncio.Event()
        self.connected = asyncio.Event()
        self.canceled = asyncio.Event()
        self.phone.on("call:incoming", self._ring)
        self.phone.on("call:connected", self._connected)
        self.phone.on("call:canceled", lambda _: self.canceled.set())

    async def _ring(self, _: Any) -> None:
        self.rang.set()
        if self.answer_after_s is not None:
            await asyncio.sleep(self.answer_after_s)
            self.call = await self.phone.answer(remote_media=self.ear.on_frame)

    def _connected(self, _: Any) -> None:
        assert self.call is not None
        self.connected.set()
        self.call.play(sine(AGENT_HZ, 30.0), WIRE_RATE, "agent tone")


async def agent_phone(gateway: GatewayServer, answer_after_s: float | None) -> Agent:
    agent = Agent(gateway.url, answer_after_s)
    await agent.phone.login(token=await fetch_token(gateway.url), user_id=AGENT)
    return agent


def recent(ear: Ear, seconds: float = 0.8) -> np.ndarray:
    frames = ear.audio[-int(seconds / 0.02) :]
    return np.concatenate(frames) if frames else np.zeros(0, np.int16)


def caller_tone(frame: np.ndarray) -> bool:
    """Whether a received 20 ms frame is the caller's tone (most of its energy is 700 Hz:
    speech has some energy there too)."""
    return tone_dbfs(frame, CALLER_HZ) > max(HEARD_DB, rms_dbfs(frame))


def music_db(pcm: np.ndarray) -> float:
    return max(tone_dbfs(pcm, f) for f in HOLD_NOTES_HZ[:3])


async def run_call(
    flow: Flow,
    gateway: GatewayServer,
    tts: Synthesizer,
    agent: Agent | None,
    during: Any = None,
) -> tuple[Bot, SimulatedCaller]:
    """The caller dials ``flow`` and plays 700 Hz; ``during(bot, caller)`` acts while the call
    is on; returns once the bot has its record (the caller's phone is closed by then)."""
    bot = Bot(flow, gateway.url, tts)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial(flow.numbers[0])
        assert caller.call is not None
        caller.call.play(sine(CALLER_HZ, 30.0), WIRE_RATE, "caller tone")
        if during is not None:
            await during(bot, caller)
        await bot.wait_records(timeout_s=20)
    finally:
        await caller.close()
        await bot.stop()
        if agent is not None:
            await agent.phone.close()
    return bot, caller


@pytest.mark.e2e
async def test_blind_transfer_joins_caller_and_agent_and_the_bot_leaves(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    agent = await agent_phone(gateway, answer_after_s=1.5)
    flow = Flow("desk", number="5550001011")
    flow.add(Transfer("to_agent", AGENT, fallback="bye"), Hangup("bye", "Goodbye."))
    heard: dict[str, float] = {}

    async def listen(bot: Bot, caller: SimulatedCaller) -> None:
        async with asyncio.timeout(10):
            await agent.rang.wait()
        await asyncio.sleep(1.0)  # the agent is still ringing
        on_hold = recent(caller.ear)
        heard["music while ringing"] = music_db(on_hold)
        heard["agent while ringing"] = tone_dbfs(on_hold, AGENT_HZ)
        async with asyncio.timeout(10):
            await agent.connected.wait()
        await bot.wait_records()
        await asyncio.sleep(1.2)
        heard["caller hears agent"] = tone_dbfs(recent(caller.ear), AGENT_HZ)
        heard["caller hears music"] = music_db(recent(caller.ear))
        heard["agent hears caller"] = tone_dbfs(recent(agent.ear), CALLER_HZ)
        calls = list(gateway.gateway.switch.calls.values())
        assert len(calls) == 1, calls
        legs = (calls[0].caller, calls[0].callee)
        assert {leg.session.user_id for leg in legs if leg} == {"caller@ivrbot.local", AGENT}
        assert all(not phone.calls for phone in bot.phones), "the bot still has a call"

    bot, _ = await run_call(flow, gateway, tts, agent, listen)
    print({k: round(v, 1) for k, v in heard.items()})
    assert heard["music while ringing"] > HEARD_DB, "no music on hold while the agent rang"
    assert heard["agent while ringing"] < SILENT_DB
    assert heard["caller hears agent"] > HEARD_DB and heard["agent hears caller"] > HEARD_DB
    assert heard["caller hears music"] < SILENT_DB
    record = bot.records[0]
    assert record.outcome == "transferred" and record.path == ["to_agent"], record.error
    (entry,) = record.to_dict()["transfers"]
    assert entry["step"] == "to_agent" and entry["target"] == AGENT
    assert (entry["mode"], entry["outcome"]) == ("blind", "transferred")
    assert 1.2 < entry["ring_s"] < 5
    assert bot.finished[0].vars["to_agent"].outcome == "transferred"
    assert record.prompts == []  # the caller heard nothing from the bot


@pytest.mark.e2e
async def test_warm_transfer_announces_the_caller_to_the_agent_first(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    agent = await agent_phone(gateway, answer_after_s=0.3)
    flow = Flow("desk", number="5550001012")
    flow.add(
        Set("init", {"account": "4 2"}),
        Transfer("to_agent", AGENT, mode="warm", announce="A caller about account {account}."),
        Hangup("bye", "Goodbye."),
    )

    async def until_bridged(bot: Bot, caller: SimulatedCaller) -> None:
        async with asyncio.timeout(15):
            while not any(caller_tone(f) for f in agent.ear.audio[-5:]):
                await asyncio.sleep(0.05)

    bot, _ = await run_call(flow, gateway, tts, agent, until_bridged)
    record = bot.records[0]
    assert record.outcome == "transferred", record.error
    (entry,) = record.transfers
    assert entry["mode"] == "warm" and entry["announcement"] == "A caller about account 4 2."
    # what the agent heard before the caller's tone first reached them: the announcement
    bridged = next(i for i, f in enumerate(agent.ear.audio) if caller_tone(f))
    before = [db for _, db in agent.ear.levels[:bridged]]
    speech_s = sum(db > SPEECH_DB for db in before) * 0.02
    print(f"the agent heard {speech_s:.2f} s of announcement before the caller")
    assert speech_s > 1.0, "the agent heard no announcement before the caller"


@pytest.mark.e2e
async def test_no_answer_goes_to_the_fallback_and_the_caller_is_resumed(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    agent = await agent_phone(gateway, answer_after_s=None)
    sorry = "Sorry, nobody is free."
    flow = Flow("desk", number="5550001013")
    flow.add(
        Transfer("to_agent", AGENT, timeout_s=2, say=sorry, fallback="bye"),
        Hangup("bye", "Goodbye."),
    )
    rang_at: list[float] = []

    async def wait(bot: Bot, caller: SimulatedCaller) -> None:
        async with asyncio.timeout(10):
            await agent.rang.wait()
        rang_at.append(time.monotonic())
        async with asyncio.timeout(10):
            await agent.canceled.wait()
            await caller.disconnected.wait()

    bot, caller = await run_call(flow, gateway, tts, agent, wait)
    record = bot.records[0]
    assert record.path == ["to_agent", "bye"] and record.outcome == "completed", record.error
    (entry,) = record.transfers
    assert entry["outcome"] == "no-answer" and "no answer within 2 s" in entry["reason"]
    result = bot.finished[0].vars["to_agent"]
    assert isinstance(result, TransferResult) and result.outcome == "no-answer"
    assert record.prompts == [sorry, "Goodbye."]
    assert gateway.gateway.switch.calls == {}
    # on hold while the agent rang; back with the bot for the sorry prompt
    playback = next(p for p in bot.finished[0].playbacks if p.label == sorry)
    assert playback.started_at and playback.ended_at
    ringing = [
        pcm for (t, _), pcm in zip(caller.ear.levels, caller.ear.audio, strict=True)
        if rang_at[0] + 0.3 < t < playback.started_at
    ]  # fmt: skip
    assert music_db(np.concatenate(ringing)) > HEARD_DB, "no music on hold while it rang"
    during = caller.ear.level_between(playback.started_at + 0.25, playback.ended_at)
    assert np.mean(np.array(during) > SPEECH_DB) > 0.6, "the caller did not hear the apology"


@pytest.mark.e2e
async def test_a_caller_who_hangs_up_on_hold_stops_the_ringing(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    agent = await agent_phone(gateway, answer_after_s=None)
    flow = Flow("desk", number="5550001013")
    flow.add(Transfer("to_agent", AGENT, timeout_s=15), Hangup("bye", "Goodbye."))

    async def hang_up(bot: Bot, caller: SimulatedCaller) -> None:
        async with asyncio.timeout(10):
            await agent.rang.wait()
        await caller.hangup()
        async with asyncio.timeout(3):
            await agent.canceled.wait()  # the bot stopped ringing the agent at once

    bot, _ = await run_call(flow, gateway, tts, agent, hang_up)
    record = bot.records[0]
    assert record.outcome == "caller-hangup" and record.path == ["to_agent"]
    assert [t["outcome"] for t in record.transfers] == ["caller-hangup"]
    assert gateway.gateway.switch.calls == {}
    assert all(not phone.calls for phone in bot.phones)


@pytest.mark.e2e
async def test_move_hands_the_call_to_another_bot_process(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    other = Flow("taker", number="5550001014")
    other.add(Say("hello", "You are talking to the second bot."), Hangup("bye"))
    second_bot = Bot(other, gateway.url, tts)

    flow = Flow("mover", number="5550001014")
    flow.add(Move("first", fallback="start_other"))

    @flow.step("start_other", goes_to=["second"])
    async def start_other(call: FlowCall) -> str:
        await second_bot.start()  # another process of the same number logs in
        return "second"

    flow.add(Move("second", fallback="stuck"), Hangup("stuck", "Nobody took the call."))
    bot = Bot(flow, gateway.url, tts, max_calls=1)  # no idle session of its own to move to
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial("5550001014")
        async with asyncio.timeout(15):
            await caller.disconnected.wait()  # the second bot said hello and hung up
            while not (bot.records and second_bot.records):
                await asyncio.sleep(0.05)
    finally:
        await caller.close()
        await bot.stop()
        await second_bot.stop()
    record = bot.records[0]
    assert record.path == ["first", "start_other", "second"] and record.outcome == "moved"
    assert [(t["step"], t["outcome"]) for t in record.transfers] == [
        ("first", "failed"), ("second", "moved"),
    ]  # fmt: skip
    assert "no other session" in record.transfers[0]["reason"]
    taken = second_bot.records[0]
    assert taken.caller == "caller@ivrbot.local" and taken.path == ["hello", "bye"]
    assert taken.prompts == ["You are talking to the second bot."]
    spoke = [db for _, db in caller.ear.levels if db > SPEECH_DB]
    assert len(spoke) * 0.02 > 1.0, "the caller did not hear the second bot"


# checks and drawing (no calls) ----------------------------------------------------------------
def problems_of(*steps: Any) -> list[str]:
    flow = Flow("t", number="5550001001")
    flow.add(*steps, Hangup("bye"))
    return [str(p) for p in check_flow(flow) if "unreachable" not in p.message]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        (Transfer("t", ""), "error: step 't': Transfer has no target"),
        (Transfer("t", "  "), "Transfer has no target"),
        (Transfer("t", "tel:+15550001000"), "give a number, user@domain or sip:URI"),
        (Transfer("t", "sip:a@b", mode="warm", announce="Hi."), "blind transfers only"),
        (Transfer("t", "a@b@c"), "one @"),
        (Transfer("t", "(!)"), "is not a callable number"),
        (Transfer("t", AGENT, timeout_s=0), "timeout_s must be a positive number"),
        (Transfer("t", AGENT, timeout_s=-3), "timeout_s must be a positive number"),
        (Transfer("t", AGENT, fallback="nowhere"), "unknown step 'nowhere' (fallback)"),
        (Transfer("t", AGENT, mode="cold"), "mode must be 'blind' or 'warm'"),
        (Transfer("t", AGENT, mode="warm"), "give announce="),
        (Transfer("t", AGENT, mode="warm", announce="{oops"), "not a valid format string"),
        (Transfer("t", AGENT, announce="Hi."), "warning: step 't': announce is only spoken"),
        (Transfer("t", AGENT, say=""), "say is empty"),
        (Transfer("t", AGENT, fallback="bye", next="t"), "warning: step 't': Transfer never"),
        (Move("m", timeout_s=0), "error: step 'm': timeout_s must be a positive number"),
        (Move("m", fallback="nowhere"), "unknown step 'nowhere' (fallback)"),
    ],
)
def test_bad_options(step: Any, fragment: str) -> None:
    found = problems_of(step)
    assert len(found) == 1 and fragment in found[0], found


@pytest.mark.unit
def test_good_options_have_no_problems() -> None:
    assert problems_of(Transfer("t", AGENT), Move("m")) == []
    assert problems_of(Transfer("t", "5550001099", "warm", "Account {acct.value}.")) == []


@pytest.mark.contract
def test_edges_prompts_and_boxes() -> None:
    flow = Flow("t", number="5550001001")
    flow.add(
        Transfer("agent", AGENT, "warm", "A caller.", 9, fallback="move", say="Sorry."),
        Move("move"),
        Transfer("other", "5550001099", "warm", "About {account}.", next="bye"),
        Hangup("bye"),
    )
    assert check_flow(flow) == []
    edges = {(e.source, e.target, e.label) for e in flow_edges(flow)}
    assert edges == {
        ("agent", "move", "fallback"), ("move", "other", "fallback"),
        ("other", "bye", "fallback"),
    }  # fmt: skip
    # static prompts are synthesised when the bot starts; one with {variables} per call
    assert {"Sorry.", "A caller."} <= set(flow.prompts())
    assert not any("{" in p for p in flow.prompts())
    chart = mermaid(flow)
    assert '<i>Transfer</i> warm to agent@ivrbot.local"' in chart
    assert "<i>Move</i> to another session" in chart
    assert "-- fallback -->" in chart
    picture = svg(flow)
    assert Transfer.colour in picture and Move.colour in picture


@pytest.mark.unit
def test_announcements_fill_in_call_variables() -> None:
    class Answer:
        value = "123456"

    values = {"name": "Kim", "account": Answer()}
    assert fill("For {name}, account {account.value}.", values) == "For Kim, account 123456."
    assert fill("For {name}, about {missing}.", values) == "For Kim, about ."


@pytest.mark.unit
def test_the_record_lists_transfers() -> None:
    record = FlowRecord("bank", "sip:caller@ivrbot.local")
    result = TransferResult(AGENT, "warm", "no-answer", "no answer within 2 s", 2.004)
    record.transfers.append({"step": "agent", **result.to_dict()})
    assert record.to_dict()["transfers"] == [
        {
            "step": "agent", "target": AGENT, "mode": "warm", "outcome": "no-answer",
            "reason": "no answer within 2 s", "ring_s": 2.0, "announcement": "",
        }
    ]  # fmt: skip
