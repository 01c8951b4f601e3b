"""Audio tracks on a WebRTC leg: what we send (prompts, bridged audio) and what we receive."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.media.frames import WIRE_RATE, WIRE_SAMPLES, frame_from_pcm, pcm_from_frame, resample
from ivrbot.media.wire_prompt import (
    MIN_LEVEL,
    SILENCE,
    WirePrompt,
    frame_tag,
    silence_payload,
    tag_frame,
    wire_prompt,
)
from ivrbot.metrics import FRAME_LATENESS

log = logging.getLogger(__name__)

FrameSink = Callable[[av.AudioFrame], Awaitable[None] | None]
PcmTap = Callable[[np.ndarray], None]
"""Receives each 20 ms a track sends: mono int16 at 48 kHz, read-only (a recorder, say)."""


Tag = tuple[WirePrompt, int] | str | None
"""What a 20 ms frame is, when it is known: frame ``k`` of a cached prompt, or
:data:`SILENCE`; None for anything else (mixed, bridged from a peer)."""


class WirePacket:
    """A 20 ms frame as a payload already encoded for the sender's codec (see
    :meth:`OutboundAudio.recv_wire`): ``pts`` at 48 kHz as frames have, ``level`` in dBov."""

    __slots__ = ("level", "payload", "pts")

    def __init__(self, payload: bytes, pts: int, level: int) -> None:
        self.payload, self.pts, self.level = payload, pts, level


class Playback:
    """One piece of audio queued on an :class:`OutboundAudio`: await it, or stop it.

    ``wire`` is set for a cached (read-only) prompt: its frames can go out pre-encoded;
    ``clock`` (its track's) times when it started and ended."""

    def __init__(
        self,
        pcm: np.ndarray,
        label: str = "",
        loop: bool = False,
        wire: WirePrompt | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.clock = clock
        self.label = label
        self.loop = loop  # play again from the start until stopped (ringback, music on hold)
        self.wire = wire
        self._pcm = wire.pcm if wire is not None else pcm
        self._pos = 0
        self.started_at: float | None = None  # clock.monotonic() of the first frame sent
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
        return self._next_tagged()[0]

    def _next_tagged(self) -> tuple[np.ndarray, Tag]:
        """The next 20 ms, and which frame of the wire prompt it is (None: not cached)."""
        if self.started_at is None:
            self.started_at = self.clock.monotonic()
        tag: Tag = (self.wire, self._pos // WIRE_SAMPLES) if self.wire is not None else None
        chunk = self._pcm[self._pos : self._pos + WIRE_SAMPLES]
        self._pos += WIRE_SAMPLES
        if self._pos >= self._pcm.size:
            if self.loop:
                self._pos = 0
            else:
                self._finish()
        if chunk.size < WIRE_SAMPLES:
            chunk = np.pad(chunk, (0, WIRE_SAMPLES - chunk.size))
        return chunk, tag

    def _finish(self) -> None:
        self.ended_at = self.clock.monotonic()
        if not self._done.done():
            self._done.set_result(None)

    def __await__(self) -> Generator[Any, None, None]:
        return self._done.__await__()


class Pacer:
    """Pacing of a track's frames on ``clock`` (real time unless given): ``await next()``
    waits until the next frame is due (the first at once) and gives its pts, in samples at
    ``rate``; a late frame is not waited for (the next ones catch up). How late each frame
    is goes to /metrics (ivrbot_frame_lateness_seconds)."""

    def __init__(
        self, rate: int = WIRE_RATE, samples: int = WIRE_SAMPLES, clock: Clock = REAL_CLOCK
    ) -> None:
        self.rate, self.samples, self.clock = rate, samples, clock
        self.pts = 0
        self._start: float | None = None

    async def next(self) -> int:
        if self._start is None:
            self._start = self.clock.monotonic()
        else:
            self.pts += self.samples
            wait = self._start + self.pts / self.rate - self.clock.monotonic()
            FRAME_LATENESS.observe(max(0.0, -wait))
            if wait > 0:
                await self.clock.sleep(wait)
        return self.pts


class OutboundAudio(MediaStreamTrack):
    """The audio a leg sends: queued playbacks mixed with bridged frames, silence otherwise.

    Paced in real time at 20 ms per frame, always mono 48 kHz: aiortc's encoders fix their
    resampler on the first frame, so every frame a track gives must have the same format.
    Bridged audio (another leg's received frames, stereo from Opus, 8 kHz from G.711) is
    converted on arrival and buffered up to ``MAX_BRIDGED_S``; older audio is dropped.

    Frames are tagged (:func:`~ivrbot.media.wire_prompt.tag_frame`, see :data:`Tag`) when they are one frame of a cached
    prompt or silence, and the tag survives bridging: an aiortc sender reads this track with
    :meth:`recv_wire` and sends such frames as payloads encoded once (no encoder run).
    """

    MAX_BRIDGED_S = 0.1

    kind = "audio"

    def __init__(self, clock: Clock = REAL_CLOCK) -> None:
        super().__init__()
        self.clock = clock  # paces the frames; times the playbacks
        self._queue: collections.deque[Playback] = collections.deque()
        self._bridged: collections.deque[tuple[np.ndarray, Tag]] = collections.deque()
        self._bridged_size = 0
        self._converter: av.AudioResampler | None = None
        self._pacer = Pacer(clock=clock)
        self.muted = False  # send silence (prompts keep their place)
        self.taps: list[PcmTap] = []  # hear every frame sent (see PcmTap); remove to stop

    def play(
        self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "", loop: bool = False
    ) -> Playback:
        """Queue ``pcm``; a read-only array (a cached prompt) is resampled and encoded once
        for every leg that plays it (see :mod:`ivrbot.media.wire_prompt`)."""
        wire = wire_prompt(pcm, rate)
        wire_pcm = wire.pcm if wire is not None else resample(pcm, rate, WIRE_RATE)
        playback = Playback(wire_pcm, label, loop, wire, self.clock)
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
        tag: Tag = None
        if frame.sample_rate == WIRE_RATE and frame.format.name == "s16":
            pcm = pcm_from_frame(frame)
            if pcm.size == WIRE_SAMPLES:
                tag = _tag_of(frame)
        else:
            if self._converter is None:
                self._converter = av.AudioResampler(format="s16", layout="mono", rate=WIRE_RATE)
            frame.pts = None
            parts = [f.to_ndarray().reshape(-1) for f in self._converter.resample(frame)]
            pcm = np.concatenate(parts) if parts else _ZEROS[:0]
        if pcm.size:
            self._bridged.append((pcm, tag))
            self._bridged_size += pcm.size
            self._drop_late()

    def _drop_late(self) -> None:
        excess = self._bridged_size - int(self.MAX_BRIDGED_S * WIRE_RATE)
        while excess > 0:
            pcm, _ = self._bridged.popleft()
            if pcm.size > excess:
                self._bridged.appendleft((pcm[excess:], None))
                self._bridged_size -= excess
                return
            self._bridged_size -= pcm.size
            excess -= pcm.size

    def clear_bridged(self) -> None:
        self._bridged.clear()
        self._bridged_size = 0

    def _take_bridged(self) -> tuple[np.ndarray, Tag] | None:
        if self._bridged_size < WIRE_SAMPLES:
            return None
        head, tag = self._bridged[0]
        if head.size == WIRE_SAMPLES:  # the usual case: whole 20 ms frames, tags kept
            self._bridged.popleft()
            self._bridged_size -= WIRE_SAMPLES
            return head, tag
        parts, need = [], WIRE_SAMPLES
        while need:
            head, _ = self._bridged.popleft()
            if head.size > need:
                self._bridged.appendleft((head[need:], None))
                head = head[:need]
            parts.append(head)
            need -= head.size
        self._bridged_size -= WIRE_SAMPLES
        return np.concatenate(parts), None

    def stop(self) -> None:
        self.stop_playback()
        self.clear_bridged()
        # The converter (a PyAV filter graph) runs ffmpeg worker threads for as long as it
        # lives: free it now rather than when the leg's reference cycles are collected.
        self._converter = None
        super().stop()

    async def _next(self) -> tuple[int, np.ndarray, Tag]:
        """The next 20 ms (paced): its pts, samples and tag."""
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self._pacer.next()
        while self._queue and self._queue[0].done:
            self._queue.popleft()
        bridged = self._take_bridged()
        tag: Tag
        if not self._queue:
            pcm, tag = bridged if bridged is not None else (_ZEROS, SILENCE)
        else:
            pcm, tag = self._queue[0]._next_tagged()
            if bridged is not None and bridged[1] != SILENCE:
                mixed = pcm.astype(np.int32) + bridged[0]
                pcm, tag = np.clip(mixed, -32768, 32767).astype(np.int16), None
        if self.muted:
            pcm, tag = _ZEROS, SILENCE
        if self.taps:
            for tap in list(self.taps):
                try:
                    tap(pcm)
                except Exception:
                    log.exception("a tap of an outbound track failed")
        return pts, pcm, tag

    async def recv(self) -> av.AudioFrame:
        pts, pcm, tag = await self._next()
        frame = frame_from_pcm(pcm, pts)
        tag_frame(frame, tag)
        return frame

    async def recv_wire(self, codec: str) -> av.AudioFrame | WirePacket:
        """For an aiortc sender of ``codec`` ('opus', 'PCMU' ...): the next 20 ms as a
        :class:`WirePacket` when it is silence or a cached prompt's frame alone, else as a
        frame to encode."""
        pts, pcm, tag = await self._next()
        if tag == SILENCE:
            payload = silence_payload(codec)
            if payload is not None:
                return WirePacket(payload, pts, MIN_LEVEL)
        elif tag is not None and not isinstance(tag, str):
            wire, k = tag
            payload = wire.payload(codec, k)
            if payload is not None:
                return WirePacket(payload, pts, int(wire.levels[k]))
        return frame_from_pcm(pcm, pts)


def _tag_of(frame: av.AudioFrame) -> Tag:
    opaque = frame_tag(frame)
    if opaque == SILENCE:
        return SILENCE
    if isinstance(opaque, tuple) and isinstance(opaque[0], WirePrompt):
        return (opaque[0], int(opaque[1]))
    return None


_ZEROS = np.zeros(WIRE_SAMPLES, np.int16)
_ZEROS.flags.writeable = False


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
