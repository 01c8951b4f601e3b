"""The conference mixer: every 20 ms each member hears everyone but itself (an N-1 mix).

The mixer moves PCM only (mono int16 at 48 kHz, one tick = 20 ms = 960 samples). It knows
nothing of legs, codecs or sockets: a member is an input buffer (:meth:`Mixer.feed`) and a
sink called with that member's mix every tick. So a member can be a WebRTC leg in this
process (``conferences.LegMember`` adapts one), a bot attached without any codec, or a pipe
to a media worker in another process (feed what arrives on the pipe, write the sink's
output back). Taps subscribe to the full mix of everyone (a recorder, a monitor).

One tick, for N members, is a handful of numpy calls over an (N, 960) int32 block:
copy each member's 20 ms in (silence when it has none), sum the rows once, subtract each
member's own row from the sum, clip to int16. Python work per tick is O(N) list steps,
never a loop over samples.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable

import av
import numpy as np

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.media.frames import PTIME_S, WIRE_RATE, pcm_from_frame

log = logging.getLogger(__name__)

PcmSink = Callable[[np.ndarray], None]
"""Receives one tick of mono int16 PCM (an array it owns: the mixer never reuses it)."""

MAX_BUFFER_S = 0.1  # audio a member may have queued; older samples are dropped
TARGET_QUEUE_TICKS = 1  # a steady backlog longer than this (after a take) is trimmed
LATE_RESYNC_S = 0.1  # when the tick loop is this far behind it skips ahead instead of bursting


class MemberInput:
    """A member's received audio waiting for the next tick: a small FIFO of PCM chunks.

    It absorbs arrival jitter: a frame that arrives just after a tick is mixed at the next
    one. At most ``max_samples`` are kept (the oldest go first). After a burst (the event
    loop stalled, the network bunched packets) the backlog would stay as added delay, so a
    queue longer than ``target_samples`` at every tick for ``TRIM_AFTER_TICKS`` is cut back.
    """

    TRIM_AFTER_TICKS = 25  # 0.5 s of a steady backlog

    def __init__(self, max_samples: int, target_samples: int) -> None:
        self.max_samples = max_samples
        self.target_samples = target_samples
        self._chunks: collections.deque[np.ndarray] = collections.deque()
        self._size = 0
        self._backlog_ticks = 0
        self.dropped = 0  # samples dropped: overflow, or a backlog trimmed
        self.underruns = 0  # ticks at which the member had audio queued, but not 20 ms of it

    @property
    def queued(self) -> int:
        return self._size

    def feed(self, pcm: np.ndarray) -> None:
        if pcm.size == 0:
            return
        self._chunks.append(pcm)
        self._size += pcm.size
        if self._size > self.max_samples:
            self._drop_oldest(self._size - self.max_samples)

    def _drop_oldest(self, count: int) -> None:
        while count > 0:
            head = self._chunks[0]
            if head.size <= count:
                self._chunks.popleft()
                cut = head.size
            else:
                self._chunks[0] = head[count:]
                cut = count
            self._size -= cut
            self.dropped += cut
            count -= cut

    def take_into(self, row: np.ndarray) -> bool:
        """Move one tick of audio into ``row`` (silence when not enough is queued)."""
        need = row.size
        if self._size < need:
            if self._size:
                self.underruns += 1
            row.fill(0)
            return False
        head = self._chunks[0]
        if head.size == need:  # the usual case: one 20 ms frame per tick
            row[:] = head
            self._chunks.popleft()
        else:
            pos = 0
            while pos < need:
                head = self._chunks[0]
                take = min(head.size, need - pos)
                row[pos : pos + take] = head[:take]
                if take == head.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
                pos += take
        self._size -= need
        if self._size <= self.target_samples:
            self._backlog_ticks = 0
        else:
            self._backlog_ticks += 1
            if self._backlog_ticks >= self.TRIM_AFTER_TICKS:
                self._drop_oldest(self._size - self.target_samples)
                self._backlog_ticks = 0
        return True

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0


class Member:
    """One voice in the mix: what it sends (``feed``) and where its N-1 mix goes (``sink``)."""

    def __init__(self, member_id: str, sink: PcmSink, max_samples: int, target: int) -> None:
        self.id = member_id
        self.sink = sink
        self.input = MemberInput(max_samples, target)

    def feed(self, pcm: np.ndarray) -> None:
        """Audio this member sends: mono int16 at the mixer's rate, any length."""
        self.input.feed(pcm)


class Mixer:
    """An N-1 audio mixer ticking every ``ptime_s`` on the running event loop.

    ``tick()`` is synchronous and can be driven by hand (tests, benchmarks, or a media worker
    with its own clock); ``start()`` runs it on ``clock`` (real time unless given).
    """

    def __init__(
        self,
        name: str = "mixer",
        rate: int = WIRE_RATE,
        ptime_s: float = PTIME_S,
        max_buffer_s: float = MAX_BUFFER_S,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.name = name
        self.clock = clock
        self.rate = rate
        self.ptime_s = ptime_s
        self.samples = int(rate * ptime_s)
        self._max_samples = max(int(rate * max_buffer_s), self.samples)
        self._target_samples = TARGET_QUEUE_TICKS * self.samples
        self._members: dict[str, Member] = {}
        self._order: tuple[Member, ...] = ()
        self._block = np.zeros((0, self.samples), np.int32)
        self._out = np.zeros((0, self.samples), np.int32)
        self._taps: list[PcmSink] = []
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0
        self.late_ticks = 0  # ticks run more than one period late (the loop was busy)
        self.skipped_ticks = 0  # ticks given up after falling LATE_RESYNC_S behind

    # membership ---------------------------------------------------------------------------
    def add(self, member_id: str, sink: PcmSink) -> Member:
        """Add a member (replacing one with the same id); feed it through the result."""
        member = Member(member_id, sink, self._max_samples, self._target_samples)
        self._members[member_id] = member
        self._rebuild()
        log.info("%s: + %s (%d members)", self.name, member_id, len(self._members))
        return member

    def remove(self, member_id: str) -> Member | None:
        member = self._members.pop(member_id, None)
        if member is not None:
            self._rebuild()
            log.info("%s: - %s (%d members)", self.name, member_id, len(self._members))
        return member

    def feed(self, member_id: str, pcm: np.ndarray) -> None:
        member = self._members.get(member_id)
        if member is not None:
            member.feed(pcm)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def member_ids(self) -> list[str]:
        return list(self._members)

    def add_tap(self, sink: PcmSink) -> Callable[[], None]:
        """Subscribe ``sink`` to the full mix (everyone); returns the unsubscribe function."""
        self._taps.append(sink)

        def unsubscribe() -> None:
            if sink in self._taps:
                self._taps.remove(sink)

        return unsubscribe

    def _rebuild(self) -> None:
        self._order = tuple(self._members.values())
        self._block = np.zeros((len(self._order), self.samples), np.int32)
        self._out = np.zeros_like(self._block)

    # mixing -------------------------------------------------------------------------------
    def tick(self) -> None:
        """Mix one period: every member's sink gets the sum of the others, clipped."""
        self.ticks += 1
        members, block, out = self._order, self._block, self._out
        if not members:
            if self._taps:
                self._to_taps(np.zeros(self.samples, np.int16))
            return
        for row, member in zip(block, members, strict=True):
            member.input.take_into(row)
        total = block.sum(axis=0)
        np.subtract(total, block, out=out)
        np.clip(out, -32768, 32767, out=out)
        mixes = out.astype(np.int16)
        for member, mix in zip(members, mixes, strict=True):
            try:
                member.sink(mix)
            except Exception:
                log.exception("%s: sink of %s failed", self.name, member.id)
        if self._taps:
            self._to_taps(np.clip(total, -32768, 32767).astype(np.int16))

    def _to_taps(self, mix: np.ndarray) -> None:
        for tap in list(self._taps):
            try:
                tap(mix)
            except Exception:
                log.exception("%s: tap failed", self.name)

    # real time ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        deadline = self.clock.monotonic()
        while True:
            deadline += self.ptime_s
            delay = deadline - self.clock.monotonic()
            if delay > 0:
                await self.clock.sleep(delay)
            elif -delay > LATE_RESYNC_S:
                skipped = int(-delay / self.ptime_s)
                self.skipped_ticks += skipped
                deadline += skipped * self.ptime_s
                log.warning(
                    "%s: %.0f ms behind, skipped %d ticks", self.name, -delay * 1e3, skipped
                )
            elif -delay > self.ptime_s:
                self.late_ticks += 1
            self.tick()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        for member in self._order:
            member.input.clear()


class MonoConverter:
    """Received WebRTC frames -> mono int16 PCM at 48 kHz (the mixer's input format).

    Opus gives packed s16 stereo at 48 kHz: the channels are averaged with numpy. Anything
    else (G.711 at 8 kHz, planar formats) goes through one libswresample converter per leg.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None

    def __call__(self, frame: av.AudioFrame) -> np.ndarray:
        if frame.sample_rate == WIRE_RATE and frame.format.name == "s16":
            return pcm_from_frame(frame)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=WIRE_RATE)
        frame.pts = None
        parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(parts).astype(np.int16, copy=False) if parts else _EMPTY


_EMPTY = np.zeros(0, np.int16)
