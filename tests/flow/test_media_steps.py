"""Record (voicemail), Play, Set and call recording end to end, and their checks.

Real gateway, Bot and SimulatedCaller (aiortc on 127.0.0.1, espeak-ng). The caller's ear and
the recorded files are measured: tone levels by Goertzel (ivrbot/testing/audio.py), speech by
frame energy.
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from ivrbot.flow import Flow, FlowCall, Hangup, Play, Record, RecordResult, Set
from ivrbot.flow.check import check_flow, flow_edges
from ivrbot.flow.flow import FlowError
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.media.recorder import open_writer
from ivrbot.media.vad import power_dbfs
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer
from tests.flow.pictures import step_ids

WORD = "안녕하세요"
HEARD_DB = -30.0


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.astype("<i2").tobytes())
    return path


def read_channels(path: Path) -> tuple[np.ndarray, int]:
    """(channels, samples) int16 and the rate of a WAV file."""
    with wave.open(str(path), "rb") as f:
        channels, rate = f.getnchannels(), f.getframerate()
        data = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    return data.reshape(-1, channels).T, rate


def loud_span_s(pcm: np.ndarray, rate: int, threshold_db: float = -45.0) -> float:
    """Seconds from the first to the last loud 20 ms frame."""
    frame = int(0.02 * rate)
    usable = pcm.size - pcm.size % frame
    loud = np.flatnonzero(power_dbfs(pcm[:usable].reshape(-1, frame)) > threshold_db)
    return 0.0 if loud.size == 0 else float(loud[-1] - loud[0] + 1) * 0.02


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


Script = Callable[[SimulatedCaller], Awaitable[None]]


async def call_through(
    flow: Flow, gateway: GatewayServer, tts: Synthesizer, script: Script
) -> tuple[Bot, SimulatedCaller]:
    """Run one call: the caller dials the flow, acts out ``script``, and the bot hangs up."""
    bot = Bot(flow, gateway.url, tts, recordings=gateway.settings.recordings)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial(flow.numbers[0])
        await script(caller)
        async with asyncio.timeout(20):
            await caller.disconnected.wait()
        await bot.wait_records()
    finally:
        await caller.close()
        await bot.stop()
    return bot, caller


async def heard_beep(caller: SimulatedCaller, timeout_s: float = 15.0) -> None:
    """Wait until the caller has heard the 1000 Hz beep start and end."""
    async with asyncio.timeout(timeout_s):
        seen = 0
        while True:
            await asyncio.sleep(0.05)
            frames = caller.ear.audio[seen:]
            beeping = [tone_dbfs(f, 1000) > HEARD_DB for f in frames]
            if True in beeping and not beeping[-1]:
                return
            if True in beeping:
                seen += beeping.index(True)
            else:
                seen += len(frames)


@pytest.fixture
def recordings(gateway: GatewayServer) -> Path:
    """Where the calls' recordings go (Settings.recordings of the assembled parts)."""
    return gateway.settings.recordings


def voicemail_flow(silence_s: float = 3.0, prompt: str | None = "Leave a message.") -> Flow:
    flow = Flow("voicemail", number="5550001003")
    flow.add(
        Record("message", prompt=prompt, max_s=20, silence_s=silence_s, no_input="nothing"),
        Hangup("thanks", "Thank you."),
        Hangup("nothing"),
    )
    return flow


@pytest.mark.e2e
async def test_voicemail_keeps_the_words_not_the_beep_or_the_finish_key(
    gateway: GatewayServer, tts: Synthesizer, recordings: Path
) -> None:
    async def leave_a_message(caller: SimulatedCaller) -> None:
        await heard_beep(caller)
        await caller.say(WORD)
        await caller.press_inband("#")  # audible: it must be cut from the file

    bot, caller = await call_through(voicemail_flow(), gateway, tts, leave_a_message)
    record = bot.records[0]
    assert record.path == ["message", "thanks"], record.error
    (path,) = record.recordings
    assert record.to_dict()["recordings"] == [path]
    result = bot.finished[0].vars["message"]
    assert isinstance(result, RecordResult)
    assert result.outcome == "recorded" and result.path == path
    assert result.ended_by == "finish-key"
    assert Path(path).parent == recordings / "voicemail" and files(recordings) == [Path(path)]
    assert record.inputs[-1]["outcome"] == "recording" and record.inputs[-1]["value"] == path

    (pcm,), rate = read_channels(Path(path))
    spoken = await tts.synth(WORD, "ko")
    spoken_s = loud_span_s(spoken.pcm, spoken.sample_rate)
    duration = pcm.size / rate
    print(f"spoken {spoken_s:.2f} s, recorded {duration:.2f} s ({result.duration_s:.2f})")
    assert abs(duration - spoken_s) <= 0.6
    assert abs(duration - result.duration_s) < 0.05
    assert loud_span_s(pcm, rate) > 0.6 * spoken_s, "the recording holds no speech"
    edge = int(0.06 * rate)
    for i in range(edge, pcm.size - edge - int(0.04 * rate) + 1, int(0.01 * rate)):
        window = pcm[i : i + int(0.04 * rate)]
        keypad = min(tone_dbfs(window, 941, rate), tone_dbfs(window, 1477, rate))
        assert keypad < HEARD_DB, f"the '#' tone is in the file at {i / rate:.2f} s"
    window = int(0.02 * rate)  # stricter: not even in the last 60 ms (the key is cut at its start)
    last = [pcm[i : i + window] for i in range(pcm.size - 4 * window, pcm.size - window + 1, 40)]
    keypad = max(min(tone_dbfs(w, 941, rate), tone_dbfs(w, 1477, rate)) for w in last)
    assert keypad < HEARD_DB, f"the '#' tone ends the file ({keypad:.1f} dBFS)"
    assert tone_dbfs(pcm, 1000, rate) < -45, "the beep is in the file"

    ear = np.concatenate(caller.ear.audio)
    beep = [tone_dbfs(ear[i : i + 4800], 1000) for i in range(0, ear.size - 4800, 2400)]
    assert max(beep) > -20, "the caller heard no beep"
    assert sum(db > -20 for db in beep) in range(3, 8), "the beep is not about 300 ms long"


@pytest.mark.e2e
async def test_a_caller_who_hangs_up_still_leaves_a_message(
    gateway: GatewayServer, tts: Synthesizer, recordings: Path
) -> None:
    async def say_and_hang_up(caller: SimulatedCaller) -> None:
        await heard_beep(caller)
        await caller.say(WORD)
        await caller.hangup()

    bot, _ = await call_through(voicemail_flow(prompt=None), gateway, tts, say_and_hang_up)
    record = bot.records[0]
    assert record.outcome == "caller-hangup" and record.path == ["message"]
    result = bot.finished[0].vars["message"]
    assert result.outcome == "recorded" and result.ended_by == "hangup"
    assert record.recordings == [result.path] and files(recordings) == [Path(result.path)]
    (pcm,), rate = read_channels(Path(result.path))
    spoken = await tts.synth(WORD, "ko")
    assert abs(pcm.size / rate - loud_span_s(spoken.pcm, spoken.sample_rate)) <= 0.6
    assert loud_span_s(pcm, rate) > 0.5


@pytest.mark.e2e
async def test_silence_after_the_beep_is_no_input(
    gateway: GatewayServer, tts: Synthesizer, recordings: Path
) -> None:
    async def stay_silent(caller: SimulatedCaller) -> None:
        return None

    bot, _ = await call_through(voicemail_flow(1.0, None), gateway, tts, stay_silent)
    record = bot.records[0]
    assert record.path == ["message", "nothing"], record.error
    assert bot.finished[0].vars["message"] == RecordResult("noinput", None, 0.0, "no-input")
    assert record.recordings == [] and files(recordings) == []


@pytest.mark.e2e
async def test_play_files_set_variables_and_record_the_call(
    gateway: GatewayServer, tts: Synthesizer, recordings: Path, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "tone.wav", sine(700, 1.0, 16000), 16000)
    ogg = tmp_path / "tone.ogg"
    writer = open_writer(ogg)  # Ogg/Opus, from 48 kHz PCM
    writer.write(sine(1200, 1.0))
    writer.close()

    flow = Flow("jukebox", number="5550001004")
    flow.add(Set("init", {"greeted": True, "who": lambda call: call.caller, "n": 3}))

    @flow.step("rec", goes_to=["wav"])
    async def rec(call: FlowCall) -> str:
        await call.start_recording()
        return "wav"

    flow.add(Play("wav", str(wav)), Play("ogg", ogg))

    @flow.step("stop", goes_to=["bye"])
    async def stop(call: FlowCall) -> str:
        call.vars["stopped"] = await call.stop_recording()
        return "bye"

    flow.add(Hangup("bye"))
    assert check_flow(flow) == []

    async def hum(caller: SimulatedCaller) -> None:
        await caller.play(sine(440, 2.5), 48000, "hum")

    bot, caller = await call_through(flow, gateway, tts, hum)
    flow_call = bot.finished[0]
    assert flow_call.record.path == ["init", "rec", "wav", "ogg", "stop", "bye"]
    assert flow_call.vars["greeted"] is True and flow_call.vars["n"] == 3
    assert flow_call.vars["who"] == "sip:caller@ivrbot.local"

    ear = np.concatenate(caller.ear.audio)
    assert tone_dbfs(ear, 700) > HEARD_DB, "the caller did not hear the WAV file"
    assert tone_dbfs(ear, 1200) > HEARD_DB, "the caller did not hear the Ogg file"

    (path,) = flow_call.record.recordings
    assert Path(path) == recordings / "jukebox" / f"{flow_call.record.id}.wav"
    assert flow_call.vars["stopped"] == Path(path)
    (caller_side, bot_side), rate = read_channels(Path(path))
    assert 1.7 < caller_side.size / rate < 2.6
    assert tone_dbfs(caller_side, 440, rate) > HEARD_DB, "the caller is not in the left channel"
    assert tone_dbfs(caller_side, 700, rate) < -45
    for freq in (700, 1200):
        assert tone_dbfs(bot_side, freq, rate) > HEARD_DB, f"no {freq} Hz in the right channel"
    assert tone_dbfs(bot_side, 440, rate) < -45


# checks (no calls) -------------------------------------------------------------------------
def errors_of(*steps: object) -> list[str]:
    flow = Flow("t", number="5550001001")
    flow.add(*steps, Hangup("bye"))  # type: ignore[arg-type]
    return [str(p) for p in check_flow(flow) if p.severity == "error"]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        (Record("r", max_s=0), "max_s must be a positive number"),
        (Record("r", max_s=-5), "max_s must be a positive number"),
        (Record("r", silence_s=0), "silence_s must be a positive number"),
        (Record("r", finish_key="x"), "finish_key 'x' is not a keypad key"),
        (Record("r", finish_key="##"), "finish_key '##' is not a keypad key"),
        (Record("r", prompt=" "), "prompt is empty"),
        (Record("r", fmt="mp3"), "fmt 'mp3' is not a recording format"),
        (Set("s", {}), "Set needs a dict"),
    ],
)
def test_bad_options(step: object, fragment: str) -> None:
    found = errors_of(step)
    assert len(found) == 1 and fragment in found[0], found


@pytest.mark.unit
def test_play_files_are_checked_when_the_flow_loads(tmp_path: Path) -> None:
    found = errors_of(Play("p", tmp_path / "missing.wav"))
    assert len(found) == 1 and "missing.wav" in found[0] and "not found" in found[0]
    (tmp_path / "notes.wav").write_text("not audio")
    found = errors_of(Play("p", tmp_path / "notes.wav"))
    assert len(found) == 1 and "notes.wav" in found[0] and "cannot be played" in found[0]

    module = tmp_path / "jingle.py"
    module.write_text(
        "from ivrbot.flow import Flow, Hangup, Play\n"
        "flow = Flow('jingle', number='5550001005')\n"
        "flow.add(Play('tune', 'tune.wav'), Hangup('bye'))\n"
    )
    with pytest.raises(FlowError, match=r"jingle.py.*Play file 'tune.wav' not found"):
        load_flow_file(module)
    write_wav(tmp_path / "tune.wav", sine(700, 0.2, 8000), 8000)  # next to the module
    assert load_flow_file(module).steps["tune"].path == "tune.wav"  # type: ignore[attr-defined]


@pytest.mark.contract
def test_new_steps_are_edges_and_boxes(tmp_path: Path) -> None:
    tune = write_wav(tmp_path / "tune.wav", sine(700, 0.2, 8000), 8000)
    flow = Flow("t", number="5550001001")
    flow.add(
        Set("init", {"tries": 0, "who": lambda call: call.caller}),
        Play("tune", tune),
        Record("message", "Speak.", max_s=30, next="thanks", no_input="bye"),
        Hangup("thanks", "Thanks."),
        Hangup("bye"),
    )
    assert check_flow(flow) == []
    edges = {(e.source, e.target, e.label) for e in flow_edges(flow)}
    assert edges == {
        ("init", "tune", "next"), ("tune", "message", "next"),
        ("message", "thanks", "next"), ("message", "bye", "no input"),
    }  # fmt: skip
    assert "Speak." in flow.prompts()
    chart = mermaid(flow)
    assert "<i>Record</i> <= 30 s, # ends: Speak." in chart
    assert "<i>Play</i> tune.wav" in chart and "<i>Set</i> tries=0, who=f(call)" in chart
    picture = svg(flow)
    assert step_ids(picture) == {f"step-{name}" for name in flow.steps}
