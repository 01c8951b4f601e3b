"""Barge-in over real media: the caller talks over a long prompt and the bot stops it.

Real gateway, real aiortc legs on 127.0.0.1, a Bot running a one-Ask flow (a ~6 s English
prompt, Korean choices), a SimulatedCaller that says "메뉴" (espeak-ng ko) 1.5 s into the
prompt. Times are time.monotonic() in this one process:

* speech start: arrival at the bot's receiver of the first frame of the caller's speech
  above the VAD's start threshold (-50 dBFS over 10 ms; the line is otherwise silent);
* detection: when the bot's turn decided speech had started (30 ms of loud audio);
* prompt stop: ``Playback.ended_at``, when the bot stopped sending prompt audio;
* bot -> caller delay: from the prompt's first loud 20 ms chunk leaving the bot's track to
  its arrival at the caller's ear, measured on the same call; the caller's ear must go
  quiet no later than the prompt stop plus that delay (plus one frame and some jitter).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import av
import numpy as np
import pytest
import vosk

import ivrbot.flow.call
import ivrbot.flow.call_lifecycle
from ivrbot.flow import Ask, Flow, Hangup
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import LISTEN_RATE, WIRE_RATE, WIRE_SAMPLES, pcm_from_frame, resample
from ivrbot.media.listener import Listener
from ivrbot.media.vad import power_dbfs
from ivrbot.speech.tts import Synthesizer
from ivrbot.speech.turns import GrammarTurn
from ivrbot.testing.caller import SILENCE_DB, SimulatedCaller
from ivrbot.wire.server import GatewayServer

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # a 100 ms bound: alone, after the parallel run

PROMPT = (
    "Thank you for calling the ivrbot demonstration line. Please listen carefully, "
    "because our menu options have recently changed."
)
VAD_ON_DB = -50.0  # the turn's absolute speech-start level (asr._ABS_ON_DB)
LOUD_DB = -35.0  # a clearly audible 20 ms frame, for matching prompt chunks to the ear
MAX_BARGE_IN_S = 0.100


class TimedListener(Listener):
    """The bot's listener, also noting when each received frame arrived and how loud its
    loudest 10 ms was."""

    heard: ClassVar[list[tuple[float, float]]] = []

    def on_frame(self, frame: av.AudioFrame) -> None:
        arrived = time.monotonic()
        super().on_frame(frame)
        pcm = pcm_from_frame(frame)
        n = frame.sample_rate // 100
        if pcm.size >= n:
            level = float(power_dbfs(pcm[: pcm.size - pcm.size % n].reshape(-1, n)).max())
            TimedListener.heard.append((arrived, level))


class RecordedTurn(GrammarTurn):
    made: ClassVar[list[GrammarTurn]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        RecordedTurn.made.append(self)


@pytest.fixture
async def bot(
    gateway: GatewayServer, tts: Synthesizer, model: vosk.Model, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Bot]:
    TimedListener.heard, RecordedTurn.made = [], []
    monkeypatch.setattr(ivrbot.flow.call_lifecycle, "Listener", TimedListener)
    monkeypatch.setattr(ivrbot.flow.call, "GrammarTurn", RecordedTurn)
    flow = Flow("bargein", number="5550001003", language="ko")
    flow.add(
        Ask(
            "menu",
            PROMPT,
            choices={"메뉴": "menu", "예약": "booking"},
            timeout_s=2.0,
            next="bye",
            no_input="bye",
            no_match="bye",
        ),
        Hangup("bye"),
    )
    bot = Bot(flow, gateway.url, tts, model)
    await bot.start()
    yield bot
    await bot.stop()


def first(times: list[tuple[float, float]], after: float, above: float) -> float:
    return next(t for t, db in times if t >= after and db > above)


def loud_offset(pcm: np.ndarray, rate: int, above: float, block_s: float) -> float:
    """Seconds from the start of ``pcm`` to its first block of ``block_s`` above ``above``."""
    n = int(rate * block_s)
    blocks = pcm[: pcm.size - pcm.size % n].reshape(-1, n)
    return int(np.argmax(power_dbfs(blocks) > above)) * block_s


async def wait_for(check: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


async def test_caller_speech_stops_the_prompt_within_100_ms(
    bot: Bot, gateway: GatewayServer, tts: Synthesizer
) -> None:
    prompt = await bot.prompt(PROMPT)
    assert prompt.duration_s >= 5.0
    wire_prompt = resample(prompt.pcm, prompt.sample_rate, WIRE_RATE)
    word = await tts.synth("메뉴", "ko")

    caller = SimulatedCaller(gateway.url, tts)
    try:
        call = await caller.dial("5550001003")
        ear = caller.ear.levels
        await wait_for(lambda: any(db > LOUD_DB for _, db in ear), 10)
        heard_prompt_at = first(ear, 0.0, LOUD_DB)
        await asyncio.sleep(heard_prompt_at + 1.5 - time.monotonic())
        speaking = call.play(word.pcm, word.sample_rate, "메뉴")
        await speaking
        await wait_for(lambda: bool(bot.finished), 10)
        await asyncio.sleep(0.3)  # let the caller's ear take in the end of the call
    finally:
        await caller.close()

    flow_call = bot.finished[0]
    answer = flow_call.record.inputs[0]
    assert (answer["outcome"], answer["value"]) == ("speech", "menu"), answer
    playback = flow_call.playbacks[0]
    turn = RecordedTurn.made[0]
    assert playback.started_at and playback.ended_at and speaking.started_at
    assert playback.interrupted and turn.speech_started_at is not None

    # bot -> caller: the prompt's first loud chunk left the bot's track at started_at + offset
    prompt_loud = playback.started_at + loud_offset(
        wire_prompt, WIRE_RATE, LOUD_DB, WIRE_SAMPLES / WIRE_RATE
    )
    downlink = heard_prompt_at - prompt_loud
    # caller -> bot: the word's first 10 ms above the VAD threshold left the caller's track...
    word_16k = resample(word.pcm, word.sample_rate, LISTEN_RATE)
    word_sent = speaking.started_at + loud_offset(word_16k, LISTEN_RATE, VAD_ON_DB, 0.01)
    # ...and reached the bot's receiver at speech_start
    speech_start = first(TimedListener.heard, playback.started_at + 0.5, VAD_ON_DB)
    uplink = speech_start - word_sent
    detection = turn.speech_started_at - speech_start
    barge_in = playback.ended_at - speech_start
    # the caller's ear: the last frame with any sound from the prompt
    ear_quiet = max(t for t, db in ear if t < playback.ended_at + 1.0 and db > SILENCE_DB)
    print(
        f"\nbarge-in: downlink {downlink * 1000:.0f} ms, uplink {uplink * 1000:.0f} ms, "
        f"VAD detection {detection * 1000:.0f} ms after speech start, prompt stopped "
        f"{barge_in * 1000:.0f} ms after speech start, caller's ear quiet "
        f"{(ear_quiet - playback.ended_at) * 1000:.0f} ms after the stop "
        f"({(ear_quiet - speech_start) * 1000:.0f} ms after speech start), "
        f"prompt played {playback.ended_at - playback.started_at:.2f} s of {prompt.duration_s:.2f}"
    )
    assert 0.0 < downlink < 0.4 and 0.0 < uplink < 0.4
    assert 1.0 < speech_start - playback.started_at < 3.0, "the caller spoke mid-prompt"
    assert 0.0 <= detection <= barge_in
    assert barge_in <= MAX_BARGE_IN_S, f"prompt stopped {barge_in * 1000:.0f} ms after speech"
    # The caller hears the prompt up to the stop, delayed by the downlink, and no longer.
    assert ear_quiet >= playback.ended_at + downlink - 0.06
    assert ear_quiet <= playback.ended_at + downlink + 0.06
