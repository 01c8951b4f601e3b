"""What a receiver does with each packet's sequence number, without a jitter buffer (a
G.711 leg plays at once; the bridge absorbs jitter): a packet newer than the newest seen
is played (a gap before it is loss, concealed by nothing: the bridge pads with silence);
one at or behind the newest is never played: a **duplicate** when its number was seen
among the last ``window`` numbers, else **late** (it arrived after a newer one, i.e.
reordered). Counts follow RFC 3550 A.3: ``lost`` = expected - distinct packets arrived
(late ones count as arrived)."""

from __future__ import annotations

import collections
from enum import Enum


class Verdict(Enum):
    PLAY = "play"
    DUPLICATE = "duplicate"
    LATE = "late"


class Sequencer:
    def __init__(self, window: int = 64) -> None:
        self.window = window
        self._first: int | None = None
        self._highest = 0  # extended sequence number (with wrap-arounds)
        self._seen: collections.deque[int] = collections.deque(maxlen=window)
        self._arrived = 0  # distinct packets of this stream (played or late)
        self._lost_before = 0  # in earlier streams (before a restart)
        self.played = 0
        self.late = 0
        self.duplicates = 0

    def accept(self, sequence: int) -> Verdict:
        if self._first is None:
            self._first = self._highest = sequence
            return self._play(sequence)
        delta = (sequence - self._highest) & 0xFFFF
        if 0 < delta < 0x8000:
            self._highest += delta
            return self._play(self._highest)
        back = (self._highest - sequence) & 0xFFFF
        extended = self._highest - back
        if extended in self._seen:
            self.duplicates += 1
            return Verdict.DUPLICATE
        self._seen.append(extended)
        self._arrived += 1
        self.late += 1
        return Verdict.LATE

    def restart(self) -> None:
        """A new stream (the peer's new SSRC): its first packet plays whatever its number;
        the counts go on."""
        self._lost_before = self.lost
        self._first = None
        self._seen.clear()
        self._arrived = 0

    def _play(self, extended: int) -> Verdict:
        self._seen.append(extended)
        self._arrived += 1
        self.played += 1
        return Verdict.PLAY

    @property
    def lost(self) -> int:
        if self._first is None:
            return self._lost_before
        expected = self._highest - self._first + 1
        return self._lost_before + max(0, expected - self._arrived)
