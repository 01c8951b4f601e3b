"""Media sinks: a WAV recorder as a call's remote_media, fan-out, discarding, reading WAVs."""

from __future__ import annotations

import asyncio
import threading
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from ivrbot.media.frames import WIRE_SAMPLES, frame_from_pcm
from ivrbot.media.sinks import Silence, Tee, WavRecorder, read_wav
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login


def frames_of(pcm: np.ndarray) -> list[av.AudioFrame]:
    return [
        frame_from_pcm(pcm[i : i + WIRE_SAMPLES], i)
        for i in range(0, pcm.size - WIRE_SAMPLES + 1, WIRE_SAMPLES)
    ]


def read_back(path: Path) -> tuple[np.ndarray, int, int]:
    with wave.open(str(path), "rb") as f:
        assert f.getsampwidth() == 2
        data = f.readframes(f.getnframes())
        return np.frombuffer(data, "<i2"), f.getframerate(), f.getnchannels()


@pytest.mark.unit
async def test_recorder_writes_mono_16_bit_at_its_rate(tmp_path: Path) -> None:
    path = tmp_path / "heard.wav"
    recorder = WavRecorder(path, rate=16000)
    for frame in frames_of(sine(1000, 2.0)):
        recorder(frame)
    await recorder.aclose()
    pcm, rate, channels = read_back(path)
    assert (rate, channels) == (16000, 1)
    assert abs(pcm.size - 32000) < 400  # the resampler holds back a few samples
    assert tone_dbfs(pcm[1000:], 1000, 16000) > -15
    assert recorder.duration_s == pytest.approx(2.0, abs=0.03)
    await recorder.aclose()  # twice is fine
    recorder.close()


@pytest.mark.unit
async def test_recorder_writes_off_the_event_loop_and_keeps_the_header_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "heard.wav"
    recorder = WavRecorder(path, rate=8000, chunk_s=0.2)
    writers: list[threading.Thread] = []
    real_write = recorder._write

    def spy(data: bytes) -> None:
        writers.append(threading.current_thread())
        real_write(data)

    monkeypatch.setattr(recorder, "_write", spy)
    frames = frames_of(sine(440, 1.0))
    for frame in frames[:25]:  # 0.5 s: two chunks are handed to the writer
        recorder(frame)
    assert len(writers) <= 2  # no frame waited for the disk
    await asyncio.sleep(0.2)
    assert len(writers) == 2
    assert all(t is not threading.main_thread() for t in writers)
    pcm, rate, _ = read_back(path)  # readable mid-recording: the header is patched per chunk
    assert rate == 8000 and pcm.size >= 3200
    for frame in frames[25:]:
        recorder(frame)
    recorder.close()
    pcm, _, _ = read_back(path)
    assert abs(pcm.size - 8000) < 200
    recorder(frames[0])  # after close: ignored


@pytest.mark.unit
def test_a_bad_path_fails_when_the_recorder_is_made(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        WavRecorder(tmp_path / "no-such-dir" / "x.wav")


@pytest.mark.unit
async def test_tee_hands_frames_to_every_sink_sync_or_async() -> None:
    seen: list[str] = []

    async def slow(frame: av.AudioFrame) -> None:
        await asyncio.sleep(0)
        seen.append("async")

    tee = Tee(lambda f: seen.append("sync"), None, slow, Silence())
    result = tee(frames_of(sine(440, 0.02))[0])
    assert result is not None
    await result
    assert seen == ["sync", "async"]
    assert Tee(Silence())(frames_of(sine(440, 0.02))[0]) is None


@pytest.mark.unit
def test_read_wav(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes(np.array([1000, 3000] * 100, "<i2").tobytes())
    pcm, rate = read_wav(stereo)
    assert rate == 22050 and pcm.size == 100 and set(pcm.tolist()) == {2000}
    eight_bit = tmp_path / "8bit.wav"
    with wave.open(str(eight_bit), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(1)
        f.setframerate(8000)
        f.writeframes(bytes(100))
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(eight_bit)
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(ValueError, match="not a PCM WAV"):
        read_wav(text)
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "missing.wav")


@pytest.mark.e2e
async def test_a_call_recorded_to_wav_holds_the_other_partys_tone(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    url = gateway.url
    alice, bot = Party(url, "alice"), Party(url, "bot")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    path = tmp_path / "alice-heard.wav"
    recorder = WavRecorder(path)
    try:
        out = await alice.phone.dial("5550001000", remote_media=recorder)
        await bot.wait("call:incoming")
        inc = await bot.phone.answer(remote_media=Silence())
        await alice.wait("call:connected")
        await bot.wait("call:connected")
        out.play(sine(440, 2.0))
        await inc.play(sine(1000, 2.0))
        await asyncio.sleep(0.3)
        await alice.phone.hangup()
    finally:
        await recorder.aclose()
        await alice.phone.close()
        await bot.phone.close()
    pcm, rate, channels = read_back(path)
    assert (rate, channels) == (16000, 1)
    assert pcm.size > 2.0 * rate
    assert tone_dbfs(pcm, 1000, rate) > -30, "the recording lacks the bot's 1000 Hz tone"
    assert tone_dbfs(pcm, 440, rate) < -50, "the recording holds alice's own 440 Hz tone"
