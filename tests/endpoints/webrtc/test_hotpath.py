"""The cheaper per-packet path over aiortc: same audio levels, same audio heard."""

from __future__ import annotations

import asyncio
import threading

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCRtpSender

from ivrbot.endpoints.webrtc.hotpath import aiortc_audio_level_dbov, audio_level_dbov
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.frames import frame_from_pcm, pcm_from_frame
from ivrbot.testing.audio import sine, tone_dbfs
from tests.endpoints.webrtc.test_rfc4733 import SineTrack, negotiate


@pytest.mark.unit
def test_audio_level_matches_aiortc() -> None:
    rng = np.random.default_rng(7)
    cases = [np.zeros(960, np.int16), np.full(960, 32767, np.int16), sine(1000, 0.02)]
    cases += [(rng.standard_normal(960) * scale).astype(np.int16) for scale in (1, 30, 3000)]
    for pcm in cases:
        frame = frame_from_pcm(pcm.astype(np.int16), 0)
        assert audio_level_dbov(frame) == aiortc_audio_level_dbov(frame)


@pytest.mark.e2e
async def test_received_audio_is_decoded_on_the_loop_and_sounds_the_same() -> None:
    """Two real peers on 127.0.0.1, Opus and then G.711: each side hears the other's tone
    (440 Hz one way, 660 Hz the other) with no decoder thread running."""
    for codecs in (None, ["audio/PCMU"]):
        pc1, pc2 = new_peer_connection(), new_peer_connection()
        try:
            pc1.addTrack(SineTrack(440.0))
            pc2.addTrack(SineTrack(660.0))
            if codecs is not None:
                capabilities = RTCRtpSender.getCapabilities("audio").codecs
                wanted = [c for c in capabilities if c.mimeType in codecs]
                pc1.getTransceivers()[0].setCodecPreferences(wanted)
            tracks1: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
            tracks2: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
            pc1.on("track", tracks1.put_nowait)
            pc2.on("track", tracks2.put_nowait)
            await negotiate(pc1, pc2)
            at2 = await asyncio.wait_for(tracks2.get(), 10)
            at1 = await asyncio.wait_for(tracks1.get(), 10)
            pcm2, pcm1 = await asyncio.gather(collect(at2, 1.0), collect(at1, 1.0))
            assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
        finally:
            await pc1.close()
            await pc2.close()
        for (pcm, rate), here, there in ((pcm2, 440, 660), (pcm1, 660, 440)):
            level = tone_dbfs(pcm, here, rate)
            assert level > -30, f"{codecs}: the {here} Hz tone is not heard"
            assert tone_dbfs(pcm, there, rate) < level - 20


async def collect(track: MediaStreamTrack, seconds: float) -> tuple[np.ndarray, int]:
    """``seconds`` of received audio (mono) after the first half second, and its rate."""
    frames: list[np.ndarray] = []
    rate = 48000
    while sum(len(f) for f in frames) < int((0.5 + seconds) * rate):
        frame = await asyncio.wait_for(track.recv(), 5)
        assert isinstance(frame, av.AudioFrame)
        rate = frame.sample_rate
        frames.append(pcm_from_frame(frame))
    return np.concatenate(frames)[rate // 2 :], rate
