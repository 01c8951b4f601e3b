"""A held call never acts for the caller: while the caller holds, the bot hears silence (no
music on hold reaches its recogniser or key detector) and its Ask's timers pause.

Real gateway, real aiortc legs on 127.0.0.1 (the remote bot) or frames in process (the bot
inside the gateway), real espeak-ng prompts, the real vosk model. What the bot hears is
measured on the audio frames it receives, before anything of the bot looks at them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import av
import pytest
import vosk

from ivrbot.compose import Parts
from ivrbot.flow import Ask, Flow, Hangup, Retry, Transfer
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.media import listener as listener_module
from ivrbot.media.frames import pcm_from_frame, rms_dbfs
from ivrbot.phone.call import CallState
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SILENCE_DB, SimulatedCaller
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.e2e

WELCOME = Path(__file__).resolve().parents[2] / "flows" / "welcome.py"
CHOICES = {"메뉴": "menu", "예약": "booking", "아니요": "no", "아니오": "no"}


class BotEar:
    """The level of every audio frame the bot's call receives, as it arrives (monotonic
    time, dBFS): the frames the bot's Phone hands to its listener, measured before the
    listener sees them."""

    def __init__(self) -> None:
        self.levels: list[tuple[float, float]] = []

    def wrap(self, on_frame: Callable[[av.AudioFrame], None]) -> Callable[[av.AudioFrame], None]:
        def heard(frame: av.AudioFrame) -> None:
            self.levels.append((time.monotonic(), rms_dbfs(pcm_from_frame(frame))))
            on_frame(frame)

        return heard

    def between(self, start: float, end: float) -> list[float]:
        return [db for t, db in self.levels if start <= t <= end]


@pytest.fixture
def bot_ear(monkeypatch: pytest.MonkeyPatch) -> BotEar:
    """Every Listener made from now on (one per bot call) is measured by the ear."""
    ear = BotEar()
    original = listener_module.Listener.__init__

    def init(self: listener_module.Listener) -> None:
        original(self)
        self.on_frame = ear.wrap(self.on_frame)  # type: ignore[method-assign]

    monkeypatch.setattr(listener_module.Listener, "__init__", init)
    return ear


@pytest.fixture
async def caller(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[SimulatedCaller]:
    caller = SimulatedCaller(gateway.url, tts)
    yield caller
    await caller.close()


async def start_bot(
    where: str, flow: Flow, parts: Parts, tts: Synthesizer, model: vosk.Model
) -> Bot:
    """A bot for ``flow``: inside the gateway (local media), or a remote Phone (WebRTC)."""
    if where == "inside":
        return await parts.serve(flow)
    assert parts.server is not None
    bot = Bot(flow, parts.server.url, tts, model)
    await bot.start()
    parts.bots.append(bot)  # stopped with the parts
    return bot


async def hold_for(caller: SimulatedCaller, seconds: float) -> tuple[float, float]:
    """The caller holds for ``seconds`` and resumes; (held at, resumed at), monotonic."""
    await caller.phone.hold()
    assert caller.call is not None and caller.call.state == CallState.HELD
    held_at = time.monotonic()
    await asyncio.sleep(seconds)
    await caller.phone.resume()
    return held_at, time.monotonic()


async def record_of(bot: Bot) -> dict[str, object]:
    records = await bot.wait_records(1, timeout_s=30)
    return records[0].to_dict()


def key_or_bye(name: str, number: str) -> Flow:
    """One question with a 3 s no-input timeout, asked once: a key (or a word) -> got,
    nothing -> bye."""
    flow = Flow(name, number=number, language="ko")
    flow.add(
        Ask("q", "Press a key.", choices=CHOICES, timeout_s=3.0, retry=Retry(attempts=1),
            next="got", no_input="bye", no_match="bye"),
        Hangup("got", "Thank you."),
        Hangup("bye", "Goodbye."),
    )  # fmt: skip
    return flow


@pytest.mark.parametrize("where", ["inside", "remote"])
async def test_a_held_welcome_bot_hears_silence_and_takes_no_answer(
    where: str,
    parts: Parts,
    tts: Synthesizer,
    model: vosk.Model,
    caller: SimulatedCaller,
    bot_ear: BotEar,
) -> None:
    """The issue: the caller put the welcome bot on hold for two seconds while it listened
    for its words, and music on hold was recognised as 'no'."""
    bot = await start_bot(where, load_flow_file(WELCOME), parts, tts, model)
    await caller.dial("5550001000")
    await caller.hear_prompt()  # the menu Ask listens for keys and words now
    held_at, resumed_at = await hold_for(caller, 2.0)
    await asyncio.sleep(0.5)
    await caller.press("7")  # the same Ask takes the key after the hold
    await caller.hear_prompt()  # "You pressed 7. Anything else?"
    await caller.hangup()
    record = await record_of(bot)

    heard = bot_ear.between(held_at + 0.3, resumed_at - 0.1)
    print(f"{where}: the held bot received {len(heard)} frames, loudest {max(heard):.1f} dBFS")
    assert len(heard) > 50, "the bot received no frames while held"
    assert max(heard) < SILENCE_DB, f"the held bot heard sound up to {max(heard):.1f} dBFS"
    inputs = [(i["step"], i["outcome"], i["value"]) for i in record["inputs"]]  # type: ignore[attr-defined]
    assert inputs[0] == ("menu", "dtmf", "7"), inputs
    assert "You pressed 7." in record["prompts"]  # type: ignore[operator]


@pytest.mark.parametrize("where", ["inside", "remote"])
async def test_the_no_input_timer_pauses_while_held(
    where: str,
    parts: Parts,
    tts: Synthesizer,
    model: vosk.Model,
    caller: SimulatedCaller,
    bot_ear: BotEar,
) -> None:
    """A 3 s no-input timeout, held 4 s just after the prompt, a key 1 s after resume: the
    same attempt takes it (held time is not the caller's time to answer)."""
    flow = key_or_bye("holdask", "5550001077")
    bot = await start_bot(where, flow, parts, tts, model)
    await caller.dial("5550001077")
    await caller.hear_prompt(silence_s=0.3)
    held_at, resumed_at = await hold_for(caller, 4.0)
    await asyncio.sleep(1.0)
    await caller.press("5")
    async with asyncio.timeout(15):
        await caller.disconnected.wait()
    record = await record_of(bot)

    assert record["path"] == ["q", "got"], record
    inputs = [(i["step"], i["outcome"], i["value"]) for i in record["inputs"]]  # type: ignore[attr-defined]
    assert inputs == [("q", "dtmf", "5")]
    heard = bot_ear.between(held_at + 0.3, resumed_at - 0.1)
    assert len(heard) > 100 and max(heard) < SILENCE_DB


@pytest.mark.parametrize("where", ["inside"])
async def test_the_timer_still_runs_out_after_the_hold(
    where: str,
    parts: Parts,
    tts: Synthesizer,
    model: vosk.Model,
    caller: SimulatedCaller,
) -> None:
    """Paused is not stopped: held 2 s, then silent, the 3 s timeout runs out 3 s (plus the
    held time) after the prompt, not sooner, not never."""
    flow = key_or_bye("holdquiet", "5550001078")
    bot = await start_bot(where, flow, parts, tts, model)
    await caller.dial("5550001078")
    await caller.hear_prompt(silence_s=0.3)
    await hold_for(caller, 2.0)
    async with asyncio.timeout(15):
        await caller.disconnected.wait()
    record = await record_of(bot)
    assert record["path"] == ["q", "bye"]
    prompt, goodbye = bot.finished[0].playbacks  # when the bot played them (monotonic)
    assert prompt.ended_at is not None and goodbye.started_at is not None
    waited = goodbye.started_at - prompt.ended_at
    assert waited > 3.0 + 2.0 - 0.3, f"the timeout ran out {waited:.1f} s after the prompt"
    assert waited < 3.0 + 2.0 + 2.5, f"the timeout ran out {waited:.1f} s after the prompt"


async def test_the_bots_own_hold_ends_with_its_resume(
    parts: Parts, tts: Synthesizer, model: vosk.Model, caller: SimulatedCaller
) -> None:
    """The bot's side holds the caller (a Transfer nobody answers) and takes them back: the
    Ask after it listens again (no hold is left over) and the log says both."""
    from tests.flow.test_transfer_steps import AGENT, agent_phone

    assert parts.server is not None
    agent = await agent_phone(parts.server, answer_after_s=None)
    flow = Flow("holdown", number="5550001076", language="ko")
    flow.add(
        Transfer("to_agent", AGENT, timeout_s=1.5, fallback="q"),
        Ask("q", "Press a key.", choices=CHOICES, timeout_s=3.0, retry=Retry(attempts=1),
            next="got", no_input="bye", no_match="bye"),
        Hangup("got", "Thank you."),
        Hangup("bye", "Goodbye."),
    )  # fmt: skip
    try:
        bot = await start_bot("inside", flow, parts, tts, model)
        notes: list[tuple[str, dict[str, object]]] = []
        bot.observers.append(lambda event, detail: notes.append((event, detail)))
        await caller.dial("5550001076")
        async with asyncio.timeout(20):  # the bot has played "Press a key." to its end
            while not any(
                p.label == "Press a key." and p.done
                for flow_call, _ in bot.active.values()
                for p in flow_call.playbacks
            ):
                await asyncio.sleep(0.05)
        await caller.press_inband("3")  # audible: a hold left over would keep it out
        record = await record_of(bot)
    finally:
        await agent.phone.close()
    assert record["path"] == ["to_agent", "q", "got"], record
    inputs = [(i["outcome"], i["value"], i["method"]) for i in record["inputs"]]  # type: ignore[attr-defined]
    assert inputs == [("dtmf", "3", "inband")]
    holds = [(event, detail.get("by")) for event, detail in notes if event in ("hold", "resume")]
    assert holds == [("hold", "bot"), ("resume", "bot")]
