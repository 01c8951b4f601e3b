"""What a gateway leg hands on of what a caller sends: every frame but the one still waiting
for the next packet (aiortc's receivers hold four more back), so the last words before a
silence, or a key's tone, reach the bot or the far party at once."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCSessionDescription

from ivrbot.core.endpoints import media_up
from ivrbot.endpoints.webrtc import hotpath
from ivrbot.endpoints.webrtc.leg import Leg
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.frames import frame_from_pcm, pcm_from_frame
from ivrbot.testing.audio import sine, tone_dbfs

SENT = 25  # 20 ms frames of a 440 Hz tone, then nothing more


class FewFrames(MediaStreamTrack):
    """SENT frames of tone at the 20 ms pace, then silence on the wire (no packets)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.pcm = sine(440.0, 0.02 * SENT, 48000)
        self.sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.sent >= SENT:
            await asyncio.Future()  # never: the caller has stopped sending
        await asyncio.sleep(0.02)
        chunk = self.pcm[self.sent * 960 : (self.sent + 1) * 960]
        frame = frame_from_pcm(chunk, 48000)
        frame.pts, frame.time_base = self.sent * 960, fractions.Fraction(1, 48000)
        self.sent += 1
        return frame


async def frames_handed_on(prefetch: int) -> list[np.ndarray]:
    hotpath.GATEWAY_PREFETCH, before = prefetch, hotpath.GATEWAY_PREFETCH
    caller, leg = new_peer_connection(), None
    got: list[np.ndarray] = []
    try:
        leg = Leg("gw")
        leg.on_frame = lambda frame: got.append(pcm_from_frame(frame))
        caller.addTrack(FewFrames())
        await caller.setLocalDescription(await caller.createOffer())
        answer = await leg.answer_offer(caller.localDescription.sdp)
        await caller.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        assert await media_up(leg, 10)
        for _ in range(100):  # until nothing more comes for a second
            count = len(got)
            await asyncio.sleep(1.0)
            if len(got) == count and count:
                break
    finally:
        hotpath.GATEWAY_PREFETCH = before
        await caller.close()
        if leg is not None:
            await leg.close()
    return got


@pytest.mark.e2e
@pytest.mark.parametrize(("prefetch", "held_back"), [(1, 1), (4, 4)])
async def test_a_leg_hands_on_all_but_the_frames_its_buffer_holds(
    prefetch: int, held_back: int
) -> None:
    got = await frames_handed_on(prefetch)
    assert len(got) == SENT - held_back
    heard = np.concatenate(got)  # and they are the tone (Opus starts quiet: a low bar)
    assert tone_dbfs(heard, 440.0, 48000) > -35
    assert tone_dbfs(heard, 1000.0, 48000) < tone_dbfs(heard, 440.0, 48000) - 20


@pytest.mark.unit
def test_the_gateway_holds_back_one_frame_by_default() -> None:
    from ivrbot.config import Settings

    assert Settings().jitter_prefetch == 1 == hotpath.GATEWAY_PREFETCH
