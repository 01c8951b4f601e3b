"""The conference bridge example and the Conference step, over real media.

Real gateway, Bot and SimulatedCallers (aiortc on 127.0.0.1, espeak-ng). Callers key in a
PIN; who hears whom is measured on what each caller received: each plays its own tone
once it is in a room (Goertzel, ivrbot/testing/audio.py); the join announcement is measured
as speech energy heard after the bot has left the call.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ivrbot.flow import Ask, Conference, ConferenceResult, Flow, Hangup, Say
from ivrbot.flow.check import check_flow, flow_edges
from ivrbot.flow.graph import svg
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.flow.sign_in import SignIn
from ivrbot.media.frames import WIRE_RATE
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller
from ivrbot.wire.server import GatewayServer

BRIDGE = Path(__file__).resolve().parents[2] / "flows" / "conference.py"
HEARD_DB, SILENT_DB = -32.0, -48.0
TONES = {"ann": 700.0, "ben": 1300.0, "cat": 1900.0}


@pytest.fixture
async def bridge(
    gateway: GatewayServer, tts: Synthesizer, request: pytest.FixtureRequest
) -> AsyncIterator[Bot]:
    """The conference bridge's bot: a remote Phone, or attached inside the gateway
    (``indirect`` parameter 'inside': local media, admission)."""
    store = gateway.gateway.store  # call records land in the gateway's SQLite file
    inside = getattr(request, "param", "remote") == "inside"
    bot = Bot(load_flow_file(BRIDGE), gateway.url, tts, store=store,
              gateway=gateway.gateway if inside else None)  # fmt: skip
    await bot.start()
    yield bot
    await bot.stop()


class Caller(SimulatedCaller):
    def __init__(self, url: str, tts: Synthesizer, name: str) -> None:
        super().__init__(url, tts, user=name)
        self.name = name
        self.tone = sine(TONES[name], 60.0, rate=WIRE_RATE, dbfs=-12.0)

    def speak_tone(self) -> None:
        assert self.call is not None
        self.call.play(self.tone, WIRE_RATE, self.name)

    def heard_since(self, since: int) -> np.ndarray:
        return np.concatenate(self.ear.audio[since:])


async def left_by_the_bot(bot: Bot, caller: str) -> None:
    """Wait until the bot has finished ``caller``'s call (it left it in a room)."""
    async with asyncio.timeout(30):
        while not any(r.caller == caller for r in bot.records):
            await asyncio.sleep(0.05)


async def who_hears(callers: list[Caller], settle: float = 1.5) -> dict[str, set[str]]:
    marks = {c.name: len(c.ear.audio) for c in callers}
    await asyncio.sleep(settle)
    out: dict[str, set[str]] = {}
    for c in callers:
        audio = c.heard_since(marks[c.name] + 15)  # skip 0.3 s of what was on its way
        out[c.name] = set()
        for name, freq in TONES.items():
            if name == c.name:
                continue
            db = tone_dbfs(audio, freq)
            if db > HEARD_DB:
                out[c.name].add(name)
            elif db > SILENT_DB:
                raise AssertionError(f"{c.name} hears {name} at an ambiguous {db:.1f} dBFS")
    return out


@pytest.mark.e2e
@pytest.mark.parametrize("bridge", ["remote", "inside"], indirect=True)
async def test_callers_with_the_same_pin_hear_each_other_and_the_announcement(
    gateway: GatewayServer, tts: Synthesizer, bridge: Bot
) -> None:
    ann, ben, cat = (Caller(gateway.url, tts, n) for n in TONES)
    try:
        await ann.dial("5550001014")
        await ann.hear_prompt()
        await ann.hear_prompt()
        await ann.press("1234#")
        await bridge.wait_records(1)  # the bot's leg left: ann is in room 'team'
        (first,) = bridge.records
        assert first.path == ["welcome", "pin", "check", "join", "enter"]
        assert first.outcome == "conferenced"
        assert first.conferences[0]["room"] == "team"
        assert first.conferences[0]["others"] == []
        result = bridge.finished[0].vars["enter"]
        assert isinstance(result, ConferenceResult) and result.done
        await ann.hear_prompt(timeout_s=15)  # the room tells everyone, ann too, she joined
        assert ann.call is not None and ann.call.state.value == "connected"

        async def ben_joins_ann() -> None:
            await ben.dial("5550001014")
            await ben.hear_prompt()
            await ben.hear_prompt()
            mark = len(ann.ear.levels)
            await ben.press("1234")  # four digits: no # needed
            await left_by_the_bot(bridge, "ben@ivrbot.local")
            await ben.hear_prompt(timeout_s=15)  # the announcement, to ben ...
            announced = [db for _, db in ann.ear.levels[mark:] if db > SPEECH_DB]
            assert len(announced) > 25, "... and to ann, already in the room (> 0.5 s)"

        async def cat_joins_another_room() -> None:
            await cat.dial("5550001014")
            await cat.hear_prompt()
            await cat.hear_prompt()
            await cat.press("5678#")
            await left_by_the_bot(bridge, "cat@ivrbot.local")
            await cat.hear_prompt(timeout_s=15)

        await asyncio.gather(ben_joins_ann(), cat_joins_another_room())
        await bridge.wait_records(3)
        by_caller = {r.caller: r for r in bridge.records}
        assert by_caller["ben@ivrbot.local"].conferences[0]["others"] == ["sip:ann@ivrbot.local"]
        assert by_caller["cat@ivrbot.local"].conferences[0]["room"] == "board"
        assert set(bridge.rooms.rooms) == {"team", "board"}

        for c in (ann, ben, cat):
            c.speak_tone()
        assert await who_hears([ann, ben, cat]) == {"ann": {"ben"}, "ben": {"ann"}, "cat": set()}

        await ann.hangup()  # ben stays in the room and hears nobody now
        assert await who_hears([ben, cat]) == {"ben": set(), "cat": set()}
        assert ben.call is not None and ben.call.state.value == "connected"

        await ben.hangup()
        await cat.hangup()
        async with asyncio.timeout(10):  # empty rooms close: their sessions log out
            while bridge.rooms.rooms or gateway.gateway.conferences.conferences:
                await asyncio.sleep(0.05)
        assert gateway.gateway.switch.calls == {}
        assert [r.outcome for r in bridge.records] == ["conferenced"] * 3
        shown = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ivrbot", "calls", "show", by_caller["ben@ivrbot.local"].id,
             "--db", gateway.gateway.settings.db],
            capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        text = " ".join(shown.stdout.split())  # as printed, without the terminal's wrapping
        assert "welcome -> pin -> check -> join -> enter" in text
        assert "room team (leave), joined; already there: sip:ann@ivrbot.local" in text
    finally:
        for c in (ann, ben, cat):
            await c.close()


@pytest.mark.e2e
async def test_a_bot_that_stays_speaks_to_the_room_then_leaves_the_caller_in_it(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    flow = Flow("host", number="5550001091")
    flow.add(
        Conference("room", room="lobby", stay=True, next="talk"),
        Ask("talk", "The host is here with you. Press a key.", next="bye"),
        Hangup("bye"),
    )
    bot = Bot(flow, gateway.url, tts)
    await bot.start()
    ann = Caller(gateway.url, tts, "ann")
    try:
        await ann.dial("5550001091")
        began = time.monotonic()
        await ann.hear_prompt(timeout_s=15)  # the bot speaks from inside the room
        await ann.press("7")  # and still gets her keys (RFC 4733 is not mixed)
        await bot.wait_records(1)
        (record,) = bot.records
        assert record.path == ["room", "talk", "bye"]
        assert record.digits == "7"
        assert record.outcome == "conferenced"
        assert record.conferences == [
            {"step": "room", "room": "lobby", "mode": "stay", "outcome": "joined",
             "reason": "", "others": []}
        ]  # fmt: skip
        assert ann.call is not None and ann.call.state.value == "connected", "ann stays"
        assert time.monotonic() - began < 15
        (room,) = bot.rooms.rooms.values()
        assert room.members == ["sip:ann@ivrbot.local"]
        await ann.hangup()
        async with asyncio.timeout(10):
            while bot.rooms.rooms:
                await asyncio.sleep(0.05)
    finally:
        await ann.close()
        await bot.stop()


@pytest.mark.e2e
async def test_a_room_that_cannot_open_goes_to_the_fallback(
    gateway: GatewayServer, tts: Synthesizer
) -> None:
    flow = Flow("broken", number="5550001092")
    flow.add(
        Conference("room", room="r", say="Sorry, no conference now.", fallback="bye"),
        Hangup("bye", "Goodbye."),
    )
    bot = Bot(flow, gateway.url, tts)
    await bot.start()
    # nothing listens there: the room cannot open
    bot.rooms.sign_in = SignIn("http://127.0.0.1:9", bot.credentials)
    ann = Caller(gateway.url, tts, "ann")
    try:
        await ann.dial("5550001092")
        async with asyncio.timeout(20):
            await ann.disconnected.wait()  # the bot says sorry and goodbye, and hangs up
        spoken = [db for _, db in ann.ear.levels if db > SPEECH_DB]
        assert len(spoken) > 50, "the caller heard the sorry prompt (> 1 s of speech)"
        await bot.wait_records(1)
        (record,) = bot.records
        assert record.path == ["room", "bye"]
        assert record.prompts == ["Sorry, no conference now.", "Goodbye."]
        assert record.outcome == "completed"
        (entry,) = record.conferences
        assert entry["outcome"] == "failed" and "room r" in entry["reason"]
    finally:
        await ann.close()
        await bot.stop()


# checking and drawing ---------------------------------------------------------------------
@pytest.mark.contract
def test_conference_steps_are_checked_and_drawn() -> None:
    flow = Flow("c", number="5550001093")
    flow.add(
        Conference("leave", room="{pin}", announce="Welcome {name", fallback="sorry"),
        Conference("stay", room=" ", stay=True, next="bye"),
        Say("sorry", "Sorry."),
        Hangup("bye"),
    )
    problems = [str(p) for p in check_flow(flow)]
    assert any("'leave'" in p and "announce is not a valid format string" in p for p in problems)
    assert any("'stay'" in p and "Conference has no room name" in p for p in problems)
    assert "step 'stay': unreachable from the start step 'leave'" in " ".join(problems)
    edges = {(e.source, e.target, e.label) for e in flow_edges(flow)}
    assert ("leave", "sorry", "fallback") in edges
    assert ("stay", "bye", "next") in edges
    assert not any(e[0] == "leave" and e[2] == "next" for e in edges), "leaving ends the flow"
    picture = svg(load_flow_file(BRIDGE))
    for name in ("welcome", "pin", "check", "join", "enter", "bye", "Conference"):
        assert f">{name}<" in picture
