"""Audio tracks on a WebRTC leg: what we send (prompts, bridged audio) and what we receive."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ivrbot.media.frames import WIRE_RATE, WIRE_SAMPLES, frame_from_pcm, pcm_from_frame, resample
from ivrbot.metrics import FRAME_LATENESS

log = logging.getLogger(__name__)

FrameSink = Callable[[av.AudioFrame], Awaitable[None] | None]
PcmTap = Callable[[np.ndarray], None]
"""Receives each 20 ms a track sends: mono int16 at 48 kHz, read-only (a recorder, say)."""


class Playback:
    """One piece of audio queued on an :class:`OutboundAudio`: await it, or stop it."""

    def __init__(self, pcm: np.ndarray, label: str = "", loop: bool = False) -> None:
        self.label = label
        self.loop = loop  # play again from the start until stopped (ringback, music on hold)
        self._pcm = pcm
        self._pos = 0
        self.started_at: float | None = None  # time.monotonic() of the first frame sent
        self.ended_at: float | None = None
        self.interrupted = False
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def duration_s(self) -> float:
        return self._pcm.size / WIRE_RATE

    @property
    def done(self) -> bool:
        return self._done.done()

    def stop(self) -> None:
        """Stop now (barge-in); the rest of the audio is not sent."""
        if not self._done.done():
            self.interrupted = True
            self._finish()

    def _next_chunk(self) -> np.ndarray:
        if self.started_at is None:
            self.started_at = time.monotonic()
        chunk = self._pcm[self._pos : self._pos + WIRE_SAMPLES]
        self._pos += WIRE_SAMPLES
        if self._pos >= self._pcm.size:
            if self.loop:
                self._pos = 0
            else:
                self._finish()
        if chunk.size < WIRE_SAMPLES:
            chunk = np.pad(chunk, (0, WIRE_SAMPLES - chunk.size))
        return chunk

    def _finish(self) -> None:
        self.ended_at = time.monotonic()
        if not self._done.done():
            self._done.set_result(None)

    def __await__(self) -> Generator[Any, None, None]:
        return self._done.__await__()


class Pacer:
    """Real-time pacing of a track's frames: ``await next()`` waits until the next frame is
    due (the first at once) and gives its pts, in samples at ``rate``; how late each frame
    is goes to /metrics (ivrbot_frame_lateness_seconds)."""

    def __init__(self, rate: int = WIRE_RATE, samples: int = WIRE_SAMPLES) -> None:
        self.rate, self.samples = rate, samples
        self.pts = 0
        self._start: float | None = None

    async def next(self) -> int:
        if self._start is None:
            self._start = time.time()
        else:
            self.pts += self.samples
            wait = self._start + self.pts / self.rate - time.time()
            FRAME_LATENESS.observe(max(0.0, -wait))
            if wait > 0:
                await asyncio.sleep(wait)
        return self.pts


class OutboundAudio(MediaStreamTrack):
    """The audio a leg sends: queued playbacks mixed with bridged frames, silence otherwise.

    Paced in real time at 20 ms per frame, always mono 48 kHz: aiortc's encoders fix their
    resampler on the first frame, so every frame a track gives must have the same format.
    Bridged audio (another leg's received frames, stereo from Opus, 8 kHz from G.711) is
    converted on arrival and buffered up to ``MAX_BRIDGED_S``; older audio is dropped.
    """

    MAX_BRIDGED_S = 0.1

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: collections.deque[Playback] = collections.deque()
        self._bridged = np.zeros(0, np.int16)
        self._converter: av.AudioResampler | None = None
        self._pacer = Pacer()
        self.muted = False  # send silence (prompts keep their place)
        self.taps: list[PcmTap] = []  # hear every frame sent (see PcmTap); remove to stop

    def play(
        self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "", loop: bool = False
    ) -> Playback:
        playback = Playback(resample(pcm, rate, WIRE_RATE), label, loop)
        self._queue.append(playback)
        return playback

    def stop_playback(self) -> None:
        """Stop everything queued or playing."""
        while self._queue:
            self._queue.popleft().stop()

    @property
    def playing(self) -> bool:
        return any(not p.done for p in self._queue)

    def push(self, frame: av.AudioFrame) -> None:
        """Audio from the leg this one is bridged to (oldest dropped when late)."""
        if self.readyState != "live":
            return
        if frame.sample_rate == WIRE_RATE and frame.format.name == "s16":
            pcm = pcm_from_frame(frame)
        else:
            if self._converter is None:
                self._converter = av.AudioResampler(format="s16", layout="mono", rate=WIRE_RATE)
            frame.pts = None
            parts = [f.to_ndarray().reshape(-1) for f in self._converter.resample(frame)]
            pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        self._bridged = np.concatenate((self._bridged, pcm))[-int(self.MAX_BRIDGED_S * WIRE_RATE) :]

    def clear_bridged(self) -> None:
        self._bridged = np.zeros(0, np.int16)

    def _take_bridged(self) -> np.ndarray | None:
        if self._bridged.size < WIRE_SAMPLES:
            return None
        pcm, self._bridged = self._bridged[:WIRE_SAMPLES], self._bridged[WIRE_SAMPLES:]
        return pcm

    def stop(self) -> None:
        self.stop_playback()
        self.clear_bridged()
        # The converter (a PyAV filter graph) runs ffmpeg worker threads for as long as it
        # lives: free it now rather than when the leg's reference cycles are collected.
        self._converter = None
        super().stop()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        while self._queue and self._queue[0].done:
            self._queue.popleft()
        bridged = self._take_bridged()
        if not self._queue:
            pcm = bridged if bridged is not None else np.zeros(WIRE_SAMPLES, np.int16)
        else:
            pcm = self._queue[0]._next_chunk()
            if bridged is not None:
                mixed = pcm.astype(np.int32) + bridged
                pcm = np.clip(mixed, -32768, 32767).astype(np.int16)
        if self.muted:
            pcm = np.zeros(WIRE_SAMPLES, np.int16)
        if self.taps:
            for tap in list(self.taps):
                try:
                    tap(pcm)
                except Exception:
                    log.exception("a tap of an outbound track failed")
        return frame_from_pcm(pcm, pts)


async def pump(track: MediaStreamTrack, sink: FrameSink) -> None:
    """Read a received track until it ends, handing every frame to ``sink``."""
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        result = sink(frame)  # type: ignore[arg-type]
        if result is not None:
            await result
