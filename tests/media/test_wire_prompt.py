"""Cached prompts and silence sent pre-encoded (ivrbot.media.wire_prompt + hotpath), heard by
a real aiortc peer on 127.0.0.1 over Opus and over PCMU."""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from ivrbot.core.endpoints import media_up
from ivrbot.endpoints.webrtc.hotpath import audio_level_dbov
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.dtmf import DtmfDetector, tones
from ivrbot.media.frames import WIRE_SAMPLES, Downsampler, frame_from_pcm, pcm_from_frame
from ivrbot.media.tracks import SILENCE, OutboundAudio
from ivrbot.media.wire_prompt import (
    cached_prompts,
    frame_levels,
    frame_tag,
    frozen,
    g711_encode,
    silence_payload,
    tag_frame,
    wire_prompt,
)
from ivrbot.testing.audio import sine, tone_dbfs
from tests.endpoints.webrtc.test_rfc4733 import negotiate

CODECS = {"opus": None, "PCMU": "audio/PCMU"}
PROMPT_HZ = (600.0, 1400.0, 2200.0)  # the "prompt": three 300 ms notes


def frozen_copy(pcm: np.ndarray) -> np.ndarray:
    """As the TTS cache holds a prompt: read-only over immutable bytes."""
    return np.frombuffer(pcm.astype(np.int16).tobytes(), np.int16)


def notes(freqs: tuple[float, ...], seconds: float = 0.3) -> np.ndarray:
    return np.concatenate([sine(f, seconds, dbfs=-10) for f in freqs])


# --- units -----------------------------------------------------------------------------------
@pytest.mark.unit
def test_frozen_and_cached_once() -> None:
    writable = notes(PROMPT_HZ)
    assert not frozen(writable)
    view = writable[:]
    view.flags.writeable = False
    assert not frozen(view)  # its memory can still change through ``writable``
    prompt = frozen_copy(writable)
    assert frozen(prompt)
    assert wire_prompt(writable, 48000) is None
    wire = wire_prompt(prompt, 48000)
    assert wire is not None and wire_prompt(prompt, 48000) is wire
    assert wire.pcm.size % WIRE_SAMPLES == 0 and wire.frames == -(-prompt.size // WIRE_SAMPLES)
    before = cached_prompts()
    kept = weakref.ref(wire)
    del prompt, wire
    gc.collect()  # (other prompts may be let go by the same collection)
    assert kept() is None  # let go with the prompt
    assert cached_prompts() < before


@pytest.mark.unit
def test_levels_match_the_per_frame_level() -> None:
    rng = np.random.default_rng(3)
    pcm = np.concatenate(
        [np.zeros(960), sine(1000, 0.02), rng.standard_normal(960) * 30, np.full(960, 32767)]
    ).astype(np.int16)
    expected = [audio_level_dbov(frame_from_pcm(pcm[i : i + 960], 0)) for i in range(0, 3840, 960)]
    assert frame_levels(pcm).tolist() == expected


@pytest.mark.unit
def test_g711_payloads_match_aiortcs_encoder() -> None:
    pcm8k = (sine(700, 0.1, rate=8000) + sine(1900, 0.1, rate=8000) // 2).astype(np.int16)
    for name in ("PCMU", "PCMA"):
        codec = RTCRtpCodecParameters(mimeType=f"audio/{name}", clockRate=8000, payloadType=0)
        encoder: Any = get_encoder(codec)
        theirs = b"".join(bytes(p) for p in encoder.codec.encode(frame_from_pcm(pcm8k, 0, 8000)))
        assert g711_encode(pcm8k, name) == theirs
        assert silence_payload(name) == g711_encode(np.zeros(160, np.int16), name)


@pytest.mark.unit
def test_bridged_tags_survive_and_mixing_drops_them() -> None:
    async def run() -> None:
        wire = wire_prompt(frozen_copy(notes(PROMPT_HZ)), 48000)
        assert wire is not None
        bot, leg = OutboundAudio(), OutboundAudio()
        bot.play(wire.pcm, 48000)  # wire.pcm is itself frozen
        for _ in range(3):
            leg.push(await bot.recv())
        first = await leg.recv_wire("opus")
        assert getattr(first, "payload", None) == wire_prompt(wire.pcm, 48000).payload("opus", 0)  # type: ignore[union-attr]
        leg.play(sine(300, 0.1))  # something else mixed in: encoded as usual
        assert isinstance(await leg.recv_wire("opus"), av.AudioFrame)
        idle = OutboundAudio()
        silent = await idle.recv()
        assert frame_tag(silent) == SILENCE
        for track in (bot, leg, idle):
            track.stop()

    asyncio.run(run())


# --- real peers ------------------------------------------------------------------------------
Call = tuple[OutboundAudio, MediaStreamTrack, RTCPeerConnection, list[tuple[int, int]]]


@asynccontextmanager
async def call(codec: str) -> AsyncIterator[Call]:
    """A sender (an ``OutboundAudio`` on a peer connection), what its peer receives, and the
    (sequence number, timestamp) of every RTP packet of the peer's receiver, as they come."""
    pc1, pc2 = new_peer_connection(), new_peer_connection()
    out = OutboundAudio()
    packets: list[tuple[int, int]] = []
    try:
        pc1.addTrack(out)
        mime = CODECS[codec]
        if mime is not None:
            caps = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType == mime]
            pc1.getTransceivers()[0].setCodecPreferences(caps)
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
        pc2.on("track", tracks.put_nowait)
        await negotiate(pc1, pc2)
        received = await asyncio.wait_for(tracks.get(), 10)
        receiver = pc2.getTransceivers()[0].receiver
        handle = receiver._handle_rtp_packet

        async def spy(packet: RtpPacket, arrival_time_ms: int) -> None:
            packets.append((packet.sequence_number, packet.timestamp))
            await handle(packet, arrival_time_ms)

        receiver._handle_rtp_packet = spy  # type: ignore[method-assign]
        yield out, received, pc1, packets
    finally:
        out.stop()
        await pc1.close()
        await pc2.close()


async def listen(track: MediaStreamTrack, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` of received audio, mono, and its rate."""
    parts: list[np.ndarray] = []
    rate = 48000
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(track.recv(), 5)
        assert isinstance(frame, av.AudioFrame)
        rate = frame.sample_rate
        parts.append(pcm_from_frame(frame))
    return np.concatenate(parts), rate


def windows(pcm: np.ndarray, rate: int, ms: int = 10) -> np.ndarray:
    n = rate * ms // 1000
    x = pcm[: pcm.size // n * n].reshape(-1, n).astype(np.float64)
    return 10 * np.log10(np.mean(x * x, axis=1) / 32768.0**2 + 1e-12)


def dominant(pcm: np.ndarray, rate: int, freqs: tuple[float, ...]) -> list[float]:
    """The strongest of ``freqs`` in each loud 100 ms window, in order, repeats merged."""
    n, out = rate // 10, list[float]()
    for i in range(0, pcm.size - n, n):
        block = pcm[i : i + n]
        levels = [tone_dbfs(block, f, rate) for f in freqs]
        if max(levels) > -35:
            best = freqs[int(np.argmax(levels))]
            if not out or out[-1] != best:
                out.append(best)
    return out


def encoder_of(pc: RTCPeerConnection) -> object:
    return pc.getSenders()[0]._RTCRtpSender__encoder  # type: ignore[attr-defined]


@pytest.mark.e2e
@pytest.mark.parametrize("codec", list(CODECS))
async def test_caller_hears_a_pre_encoded_prompt(codec: str) -> None:
    prompt = frozen_copy(notes(PROMPT_HZ))
    async with call(codec) as (out, received, pc1, _packets):
        await listen(received, 0.3)
        playback = out.play(prompt, 48000)
        pcm, rate = await listen(received, 1.4)
        assert playback.done and not playback.interrupted
        assert encoder_of(pc1) is None  # nothing was encoded on this leg: all pre-encoded
    assert dominant(pcm, rate, PROMPT_HZ) == list(PROMPT_HZ)
    for freq in PROMPT_HZ:
        assert tone_dbfs(pcm, freq, rate) > -30


@pytest.mark.e2e
@pytest.mark.parametrize("codec", list(CODECS))
async def test_dtmf_tones_from_a_pre_encoded_prompt_are_detected(codec: str) -> None:
    digits = "159#0*"
    prompt = frozen_copy(tones(digits, 48000))
    async with call(codec) as (out, received, pc1, _packets):
        await listen(received, 0.2)
        out.play(prompt, 48000)
        pcm, rate = await listen(received, prompt.size / 48000 + 0.4)
        assert encoder_of(pc1) is None
    down = Downsampler(16000)
    pcm16 = down.convert(frame_from_pcm(pcm, 0, rate))
    detector = DtmfDetector(16000)
    found = [d for i in range(0, pcm16.size, 320) for d in detector.feed(pcm16[i : i + 320])]
    assert "".join(found) == digits


@pytest.mark.e2e
@pytest.mark.parametrize("codec", list(CODECS))
async def test_prompt_bridged_prompt_is_continuous(codec: str) -> None:
    """A cached prompt (pre-encoded), then bridged audio (encoded live), then the prompt
    again: the receiver hears all three with no gap over 60 ms."""
    prompt = frozen_copy(sine(700, 0.5, dbfs=-10))
    bridged = sine(1100, 0.6, dbfs=-10)

    async def feed_bridged(out: OutboundAudio) -> None:
        start = time.monotonic()
        for k in range(bridged.size // WIRE_SAMPLES):  # 3 frames ahead, then in time
            await asyncio.sleep(max(0.0, start + (k - 3) * 0.02 - time.monotonic()))
            out.push(frame_from_pcm(bridged[k * WIRE_SAMPLES : (k + 1) * WIRE_SAMPLES], 0))

    async with call(codec) as (out, received, pc1, packets):
        await listen(received, 0.3)
        listening = asyncio.ensure_future(listen(received, 2.2))

        async def sequence() -> None:
            await out.play(prompt, 48000)
            await feed_bridged(out)
            await out.play(prompt, 48000)

        del packets[:]
        await sequence()
        pcm, rate = await listening
        assert encoder_of(pc1) is not None  # the bridged part was encoded
    step = 960 if codec == "opus" else 160
    pairs = list(itertools.pairwise(packets))
    assert len(pairs) > 70 and all(  # one packet per 20 ms, stamped 20 ms apart, throughout
        (b[0] - a[0]) % 65536 == 1 and (b[1] - a[1]) % (1 << 32) == step for a, b in pairs
    ), [(a, b) for a, b in pairs if (b[1] - a[1]) % (1 << 32) != step][:3]
    assert dominant(pcm, rate, (700.0, 1100.0)) == [700.0, 1100.0, 700.0]
    loud = windows(pcm, rate) > -40
    first, last = int(np.argmax(loud)), loud.size - int(np.argmax(loud[::-1]))
    quiet_runs, run = [], 0
    for is_loud in loud[first:last]:
        run = 0 if is_loud else run + 1
        quiet_runs.append(run)
    assert max(quiet_runs, default=0) * 10 <= 60, f"{codec}: a gap of {max(quiet_runs) * 10} ms"
    assert (last - first) * 10 >= 1500  # 0.5 + 0.6 + 0.5 s of sound, heard as one


@pytest.mark.e2e
@pytest.mark.parametrize("codec", list(CODECS))
async def test_silence_is_sent_pre_encoded_and_accepted(codec: str) -> None:
    async with call(codec) as (_out, received, pc1, _packets):
        await listen(received, 0.3)
        stats0 = await pc1.getStats()
        pcm, rate = await listen(received, 1.0)
        stats1 = await pc1.getStats()
        assert encoder_of(pc1) is None  # silence was never encoded
    sent = [
        sum(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")
        for stats in (stats0, stats1)
    ]
    assert sent[1] - sent[0] >= 40  # a packet every 20 ms, about
    assert pcm.size >= 0.9 * rate  # the peer decoded them into a second of audio
    assert float(np.abs(pcm).max()) < 50  # of silence


@pytest.mark.unit
def test_stereo_to_mono_is_the_floor_of_the_mean() -> None:
    x = np.random.default_rng(5).integers(-32768, 32768, size=(1, 1920)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(x, format="s16", layout="stereo")
    expected = (x.reshape(-1, 2).astype(np.int32).sum(axis=1) // 2).astype(np.int16)
    assert np.array_equal(pcm_from_frame(frame), expected)


@pytest.mark.unit
def test_listener_skips_repeated_silence_and_hears_the_same() -> None:
    """Frames tagged silence after silence skip the resampler and the idle key detector:
    the keys found and the 16 kHz audio handed on are what they are without the skip."""
    from ivrbot.media.listener import Listener

    pcm = np.concatenate(
        [np.zeros(48000 // 2), tones("5", 48000), np.zeros(48000 // 2), tones("7", 48000)]
    )
    pcm = np.concatenate([pcm, np.zeros((-pcm.size) % 960 + 9600)]).astype(np.int16)

    def run(tagged: bool) -> tuple[str, np.ndarray, int]:
        async def main() -> tuple[str, np.ndarray, int]:
            listener, heard, converts = Listener(), list[np.ndarray](), [0]
            convert = listener._down.convert  # type: ignore[union-attr]

            def counting(frame: av.AudioFrame) -> np.ndarray:
                converts[0] += 1
                return convert(frame)

            listener._down.convert = counting  # type: ignore[union-attr, method-assign]
            listener.taps.append(heard.append)
            for i in range(0, pcm.size, 960):
                frame = frame_from_pcm(pcm[i : i + 960], i)
                if tagged and not pcm[i : i + 960].any():
                    tag_frame(frame, SILENCE)
                listener.on_frame(frame)
            keys = ""
            while not listener.presses.empty():
                keys += listener.presses.get_nowait()[0]
            return keys, np.concatenate(heard), converts[0]

        return asyncio.run(main())

    keys, audio, converts = run(tagged=False)
    keys_skip, audio_skip, converts_skip = run(tagged=True)
    assert keys == keys_skip == "57"
    assert np.array_equal(audio, audio_skip)
    assert converts_skip < converts * 0.6  # most of it was silence, and skipped


@pytest.mark.unit
def test_a_frames_tag_outlives_other_frames_tagged_alike() -> None:
    """PyAV keys ``frame.opaque`` by the object's id and forgets it when any frame holding
    that object is freed: tags are held per frame, so freeing one silent frame leaves the
    others silent."""
    import gc

    from ivrbot.endpoints.webrtc.hotpath import _silent_frame
    from ivrbot.media.wire_prompt import SILENCE, frame_tag

    frames = [_silent_frame("opus", i * 960) for i in range(3)]
    del frames[0]
    gc.collect()
    assert [frame_tag(f) for f in frames] == [SILENCE, SILENCE]


@pytest.mark.e2e
async def test_silence_received_by_a_leg_stays_silence() -> None:
    """A caller sending silence: the gateway's leg hands on frames tagged as silence (so the
    bot's listener skips them and a bridge sends the cached silence payload), not frames
    that lost their tag on the way."""
    from aiortc import RTCSessionDescription

    from ivrbot.endpoints.webrtc.leg import Leg
    from ivrbot.endpoints.webrtc.peer import new_peer_connection
    from ivrbot.media.tracks import OutboundAudio
    from ivrbot.media.wire_prompt import SILENCE, frame_tag

    caller, leg = new_peer_connection(), Leg("gw")
    tags: list[object] = []
    leg.on_frame = lambda frame: tags.append(frame_tag(frame))
    try:
        caller.addTrack(OutboundAudio())  # nothing played: silence
        await caller.setLocalDescription(await caller.createOffer())
        answer = await leg.answer_offer(caller.localDescription.sdp)
        await caller.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert await media_up(leg, 10)
        while len(tags) < 100:
            await asyncio.sleep(0.1)
    finally:
        await caller.close()
        await leg.close()
    assert tags[5:].count(SILENCE) == len(tags) - 5  # the first is decoded, then all skip
