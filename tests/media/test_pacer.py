"""The pacing of outbound audio (ivrbot.media.tracks: Pacer, OutboundAudio) on a virtual
clock: a frame every 20 ms exactly, the first at once, a late reader catching up without
drift, and playbacks timed on the track's clock."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ivrbot.media.frames import PTIME_S, WIRE_SAMPLES
from ivrbot.media.tracks import OutboundAudio, Pacer
from ivrbot.testing.audio import sine
from ivrbot.testing.clock import VirtualClock

pytestmark = pytest.mark.unit


async def test_a_frame_every_20_ms_the_first_at_once() -> None:
    clock = VirtualClock(0.0)
    pacer = Pacer(clock=clock)
    assert await pacer.next() == 0  # at once: no time passed
    second = asyncio.ensure_future(pacer.next())
    await clock.advance(PTIME_S - 0.001)
    assert not second.done()
    await clock.advance(0.001)
    assert second.done() and second.result() == WIRE_SAMPLES
    assert clock.monotonic() == PTIME_S


async def test_a_late_reader_catches_up_without_drift() -> None:
    """Nobody read for 100 ms: the 5 frames due meanwhile come at once, the next on time."""
    clock = VirtualClock(0.0)
    track = OutboundAudio(clock)
    await track.recv()
    await clock.advance(0.1)
    for k in range(1, 6):
        frame = await asyncio.wait_for(track.recv(), 1.0)  # each at once (real time too)
        assert frame.pts == k * WIRE_SAMPLES
    sixth = asyncio.ensure_future(track.recv())
    await clock.advance(0.0)
    assert not sixth.done()
    await clock.advance(PTIME_S)
    assert sixth.done() and sixth.result().pts == 6 * WIRE_SAMPLES
    track.stop()


async def test_playbacks_are_timed_on_the_tracks_clock() -> None:
    clock = VirtualClock(0.0)
    track = OutboundAudio(clock)
    await clock.advance(1.0)
    playback = track.play(np.ascontiguousarray(sine(440, 0.1)))
    frames = [await clock.run(track.recv()) for _ in range(5)]
    assert playback.done and len(frames) == 5
    assert playback.started_at == 1.0
    assert playback.ended_at == pytest.approx(1.0 + 4 * PTIME_S)  # the 5th frame's turn
    track.stop()
