"""Recording: WAV and Ogg/Opus files, legs, both directions of a call, conferences.

Most tests feed the recorder by hand (no clock); two use real calls through the gateway
(aiortc on 127.0.0.1) and measure each party's tone in the files (Goertzel).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from ivrbot.media.dtmf import tone
from ivrbot.media.frames import WIRE_SAMPLES, frame_from_pcm
from ivrbot.media.recorder import (
    PcmFeed,
    Recorder,
    RecorderState,
    keypad_tone_start,
    leg_source,
    open_writer,
    record_call,
    record_leg,
)
from ivrbot.media.sinks import read_audio
from ivrbot.media.tracks import OutboundAudio
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, connect, login
from tests.wire.test_conferences import FREQS, USERS, Member, invite_and_join, start
from tests.wire.test_conferences import tone as conference_tone

HEARD_DB = -30.0
SILENT_DB = -45.0


class Feeds:
    """Sources fed by hand: ``feeds[i](pcm)`` once the recorder has started."""

    def __init__(self, count: int) -> None:
        self.feeds: list[PcmFeed] = []
        self.detached = 0
        self.sources = [self._source for _ in range(count)]

    def _source(self, feed: PcmFeed) -> Callable[[], None]:
        self.feeds.append(feed)

        def detach() -> None:
            self.detached += 1

        return detach

    def play(self, *signals: np.ndarray) -> None:
        """Each signal to its source, 20 ms at a time, interleaved as real sources would."""
        for i in range(0, max(s.size for s in signals), WIRE_SAMPLES):
            for feed, signal in zip(self.feeds, signals, strict=True):
                if i < signal.size:
                    feed(signal[i : i + WIRE_SAMPLES])


def decode(path: Path) -> tuple[np.ndarray, int]:
    """(channels, samples) int16 and the rate of any file PyAV reads."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        resampler = av.AudioResampler(format="s16", layout=stream.codec_context.layout, rate=rate)
        parts = [
            f.to_ndarray().reshape(-1)
            for frame in container.decode(audio=0)
            for f in resampler.resample(frame)
        ]
    return np.concatenate(parts).reshape(-1, channels).T, rate


@pytest.mark.unit
@pytest.mark.parametrize("suffix", [".wav", ".ogg", ".opus"])
async def test_two_sources_two_channels_written_off_the_loop(tmp_path: Path, suffix: str) -> None:
    feeds = Feeds(2)
    recorder = Recorder(tmp_path / f"call{suffix}", feeds.sources)
    threads: set[threading.Thread] = set()
    encode = recorder.writer._encode

    def spy(pcm: np.ndarray) -> None:
        threads.add(threading.current_thread())
        encode(pcm)

    recorder.writer._encode = spy  # type: ignore[method-assign]
    assert recorder.start().state is RecorderState.RECORDING
    feeds.play(sine(440, 2.0), sine(1000, 2.0))
    assert recorder.duration_s == pytest.approx(2.0)
    assert await recorder.stop() == tmp_path / f"call{suffix}"
    assert feeds.detached == 2 and recorder.state is RecorderState.STOPPED
    assert threads and threading.main_thread() not in threads
    (left, right), rate = decode(recorder.path)
    assert rate == (16000 if suffix == ".wav" else 48000)
    assert left.size / rate == pytest.approx(2.0, abs=0.03)
    skip = rate // 10  # the codec's first milliseconds
    assert tone_dbfs(left[skip:], 440, rate) > -14 and tone_dbfs(left[skip:], 1000, rate) < -45
    assert tone_dbfs(right[skip:], 1000, rate) > -14 and tone_dbfs(right[skip:], 440, rate) < -45
    await recorder.stop()  # twice is fine


@pytest.mark.unit
async def test_mixed_to_mono_and_a_stalled_source_is_silence(tmp_path: Path) -> None:
    feeds = Feeds(2)
    recorder = Recorder(tmp_path / "mix.wav", feeds.sources, mix=True, rate=8000).start()
    feeds.play(sine(440, 1.0), sine(1000, 0.5))  # the second source stops half-way
    await recorder.stop()
    (pcm,), rate = decode(recorder.path)
    assert rate == 8000 and pcm.size / rate == pytest.approx(1.0, abs=0.03)
    assert tone_dbfs(pcm, 440, rate) > -14
    assert tone_dbfs(pcm[: rate // 2], 1000, rate) > -14
    assert tone_dbfs(pcm[rate // 2 + 100 :], 1000, rate) < -45


@pytest.mark.unit
async def test_pause_drops_audio_and_the_file_goes_on(tmp_path: Path) -> None:
    feeds = Feeds(1)
    recorder = Recorder(tmp_path / "paused.wav", feeds.sources).start()
    feeds.play(sine(440, 0.5))
    recorder.pause()
    feeds.play(sine(1000, 0.5))
    recorder.resume()
    feeds.play(sine(440, 0.5))
    await recorder.stop()
    (pcm,), rate = decode(recorder.path)
    assert pcm.size / rate == pytest.approx(1.0, abs=0.02)
    assert tone_dbfs(pcm, 440, rate) > -14 and tone_dbfs(pcm, 1000, rate) < -45


@pytest.mark.unit
async def test_held_audio_can_be_cut_at_both_ends(tmp_path: Path) -> None:
    feeds = Feeds(1)
    recorder = Recorder(tmp_path / "message.wav", feeds.sources, holdback_s=1.0).start()
    feeds.play(np.concatenate([np.zeros(48000, np.int16), sine(300, 1.0), tone("#", 48000, 100)]))
    assert recorder.held_s == pytest.approx(1.0, abs=0.02)  # the rest went to the writer
    feeds.play(np.zeros(24000, np.int16))
    assert recorder.drop_head(0.8) == pytest.approx(0.2, abs=0.02)
    onset = keypad_tone_start(recorder.recent(), 48000, "#")
    assert onset is not None
    tone_from_end = (recorder.recent().size - onset) / 48000
    assert 0.1 <= tone_from_end - 0.5 <= 0.11  # cut a few ms early, never late
    await recorder.stop(drop_last_s=tone_from_end)
    (pcm,), rate = decode(recorder.path)
    assert pcm.size / rate == pytest.approx(2.6 - 0.2 - tone_from_end, abs=0.02)
    tail = pcm[-rate // 20 :]
    assert tone_dbfs(tail, 300, rate) > -20
    assert min(tone_dbfs(tail, 941, rate), tone_dbfs(tail, 1477, rate)) < -45


@pytest.mark.unit
def test_keypad_tone_start() -> None:
    rate = 16000
    not_a_key = sine(941, 0.5, rate, -20) + sine(1700, 0.5, rate, -20)  # 1700: no keypad tone
    assert keypad_tone_start(not_a_key, rate, "#") is None
    assert keypad_tone_start(sine(941, 0.5, rate), rate, "#") is None  # one tone only
    pressed = np.concatenate([sine(300, 0.5, rate, -20), tone("#", rate, 80)])
    onset = keypad_tone_start(pressed, rate, "#")
    assert onset is not None and 0 <= rate // 2 - onset <= 0.006 * rate
    assert keypad_tone_start(pressed, rate, "5") is None  # another key's tone
    released = np.concatenate([pressed, np.zeros(rate // 5, np.int16)])
    assert keypad_tone_start(released, rate, "#") == onset
    long_ago = np.concatenate([pressed, np.zeros(rate, np.int16)])
    assert keypad_tone_start(long_ago, rate, "#") is None


@pytest.mark.unit
def test_bad_files_and_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.mp3"):
        Recorder(tmp_path / "x.mp3", Feeds(1).sources)
    for suffix in (".wav", ".ogg"):
        with pytest.raises(OSError):
            Recorder(tmp_path / "no-such-dir" / f"x{suffix}", Feeds(1).sources)
    with pytest.raises(ValueError, match="mix=True"):
        Recorder(tmp_path / "x.wav", Feeds(3).sources)
    with pytest.raises(ValueError, match="source"):
        Recorder(tmp_path / "x.wav", [])
    recorder = Recorder(tmp_path / "x.wav", Feeds(3).sources, mix=True)
    recorder.start()
    with pytest.raises(RuntimeError, match="start it once"):
        recorder.start()
    recorder.close()


@pytest.mark.unit
async def test_read_audio_decodes_any_file_once(tmp_path: Path) -> None:
    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(22050)
        f.writeframes(np.repeat(sine(700, 0.5, 22050), 2).astype("<i2").tobytes())
    pcm = read_audio(stereo)
    assert pcm.dtype == np.int16 and pcm.size == pytest.approx(24000, abs=50)
    assert tone_dbfs(pcm[500:], 700) > -14
    assert read_audio(stereo) is pcm  # cached
    os.utime(stereo, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert read_audio(stereo) is not pcm  # the file changed: decoded again

    ogg = tmp_path / "tune.ogg"
    writer = open_writer(ogg)
    writer.write(sine(1200, 1.0))
    await writer.aclose()
    pcm = read_audio(ogg)
    assert pcm.size == pytest.approx(48000, abs=10) and tone_dbfs(pcm[4800:], 1200) > -14

    with pytest.raises(FileNotFoundError, match=r"missing\.ogg"):
        read_audio(tmp_path / "missing.ogg")
    (tmp_path / "notes.ogg").write_text("not audio")
    with pytest.raises(ValueError, match=r"notes\.ogg"):
        read_audio(tmp_path / "notes.ogg")


@pytest.mark.unit
async def test_outbound_taps_hear_what_is_sent() -> None:
    track = OutboundAudio()
    heard: list[np.ndarray] = []

    def broken(pcm: np.ndarray) -> None:
        raise RuntimeError("a broken tap")

    track.taps += [broken, heard.append]
    track.play(sine(440, 0.1))
    frames = [await track.recv() for _ in range(6)]
    assert len(heard) == 6
    for frame, pcm in zip(frames, heard, strict=True):
        assert np.array_equal(frame.to_ndarray().reshape(-1), pcm)
    track.taps.clear()
    await track.recv()
    assert len(heard) == 6
    track.stop()


@pytest.mark.unit
def test_a_leg_source_hands_the_call_back_as_it_was() -> None:
    class FakeCall:
        remote_media: Callable[[av.AudioFrame], None] | None = None

    call, listened, recorded = FakeCall(), [], []
    call.remote_media = listened.append
    frame = frame_from_pcm(sine(440, 0.02), 0)
    detach = leg_source(call)(recorded.append)
    assert call.remote_media is not None
    call.remote_media(frame)
    assert len(listened) == 1 and len(recorded) == 1 and recorded[0].size == WIRE_SAMPLES
    detach()
    assert call.remote_media == listened.append


# real calls --------------------------------------------------------------------------------
@pytest.mark.e2e
async def test_a_real_call_recorded_both_ways_and_one_leg_to_ogg(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    url = gateway.url
    alice, bot = Party(url, "alice"), Party(url, "bot")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    try:
        out, inc = await connect(alice, bot)
        both = record_call(inc, tmp_path / "call.wav")  # the bot's view: alice left, bot right
        began = time.monotonic()
        heard = record_leg(out, tmp_path / "alice-heard.ogg")  # what alice hears
        out.play(sine(440, 2.0))
        inc.play(sine(1000, 2.0))
        await asyncio.sleep(1.2)
        await heard.stop()
        elapsed = time.monotonic() - began
        await both.stop()
        assert out.remote_media == alice.hear and inc.remote_media == bot.hear
    finally:
        await alice.phone.close()
        await bot.phone.close()

    (left, right), rate = decode(tmp_path / "call.wav")
    assert rate == 16000 and left.size / rate == pytest.approx(elapsed, abs=0.2)
    assert tone_dbfs(left, 440, rate) > HEARD_DB, "alice is not in the left channel"
    assert tone_dbfs(left, 1000, rate) < SILENT_DB
    assert tone_dbfs(right, 1000, rate) > HEARD_DB, "the bot is not in the right channel"
    assert tone_dbfs(right, 440, rate) < SILENT_DB

    (pcm,), rate = decode(tmp_path / "alice-heard.ogg")
    assert rate == 48000 and pcm.size / rate == pytest.approx(elapsed, abs=0.15)
    assert tone_dbfs(pcm, 1000) > HEARD_DB and tone_dbfs(pcm, 440) < SILENT_DB


@pytest.mark.e2e
async def test_a_conference_recording_holds_every_member(
    gateway: GatewayServer, tmp_path: Path
) -> None:
    url = gateway.url
    members = [Member(url, name) for name in FREQS]
    for freq in FREQS.values():
        conference_tone(freq)
    try:
        for m in members:
            scope, user = USERS[m.name]
            await m.phone.login(token=await fetch_token(url, scope), user_id=user)
        host, p1, p2 = members
        await start(host)
        await invite_and_join(host, p1, "5550001001")
        await invite_and_join(host, p2, "bob@ivrbot.local")
        conferences = gateway.gateway.conferences
        (conf,) = conferences.conferences.values()
        recorder = conferences.record(conf, tmp_path / "conference.wav")
        await asyncio.sleep(1.0)
        await host.phone.end_conference()
        async with asyncio.timeout(5):
            while conferences.conferences:
                await asyncio.sleep(0.02)
        assert recorder.state is RecorderState.STOPPED  # the end of the conference stopped it
    finally:
        for m in members:
            await m.phone.close()
    (pcm,), rate = decode(recorder.path)
    assert 0.8 < pcm.size / rate < 1.6
    for name, freq in FREQS.items():
        assert tone_dbfs(pcm, freq, rate) > HEARD_DB, f"{name}'s {freq:g} Hz is missing"
