"""RFC 4733 keys on an RTP stream, both ways, as pure per-packet rules (no sockets, no
time of their own: the sender is driven by the stream's 20 ms tick).

Sending (:class:`KeySender`): while a key is sent it replaces the audio packets of the
stream. A key is ``tone_ticks`` event packets 20 ms apart, all with the timestamp of the
first (the marker bit on that one) and a growing duration, then its end packet (end bit,
final duration) sent 3 times, as RFC 4733 section 2.5.1.4 recommends; then ``gap_ticks``
of audio before the next key.

Receiving (:class:`KeyReceiver`): a key is reported on the first packet of its event,
which is known by its RTP timestamp; every later packet with a timestamp already seen
(its updates, the repeated end packets, late copies) is ignored."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from ivrbot.endpoints.rtp.packets import KEYS, TelephoneEvent

END_REPEATS = 3


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One event packet to send: its payload, marker bit and RTP timestamp."""

    payload: bytes
    marker: bool
    timestamp: int


class KeySender:
    def __init__(
        self, samples: int = 160, tone_ticks: int = 5, gap_ticks: int = 3, volume: int = 10
    ) -> None:
        self.samples, self.tone_ticks, self.gap_ticks, self.volume = (
            samples,
            tone_ticks,
            gap_ticks,
            volume,
        )
        self._keys: collections.deque[str] = collections.deque()
        self._tick = 0  # ticks into the current key (tone, end packets, gap)
        self._start = 0  # RTP timestamp of the current key's event

    def add(self, keys: str) -> None:
        bad = [key for key in keys if key not in KEYS]
        if bad:
            raise ValueError(f"not keys RFC 4733 can send: {''.join(bad)!r} (use {KEYS})")
        self._keys.extend(keys)

    @property
    def idle(self) -> bool:
        """No key is being sent or waiting."""
        return not self._keys

    def tick(self, timestamp: int) -> EventPacket | None:
        """What to send at this 20 ms tick, whose audio would carry ``timestamp``: an
        event packet, or None (send the audio)."""
        if not self._keys:
            return None
        tick = self._tick
        self._tick += 1
        if tick == 0:
            self._start = timestamp
        key = self._keys[0]
        packet: EventPacket | None = None
        if tick < self.tone_ticks:
            duration = (tick + 1) * self.samples
            event = TelephoneEvent(key, False, self.volume, duration)
            packet = EventPacket(event.pack(), tick == 0, self._start)
        elif tick < self.tone_ticks + END_REPEATS:
            event = TelephoneEvent(key, True, self.volume, self.tone_ticks * self.samples)
            packet = EventPacket(event.pack(), False, self._start)
        if self._tick >= self.tone_ticks + END_REPEATS + self.gap_ticks:
            self._keys.popleft()
            self._tick = 0
        return packet


class KeyReceiver:
    def __init__(self, remembered: int = 32) -> None:
        self._seen: collections.deque[int] = collections.deque(maxlen=remembered)

    def accept(self, timestamp: int, payload: bytes) -> str | None:
        """The key an event packet starts, or None when its event was reported already."""
        if timestamp in self._seen:
            return None
        event = TelephoneEvent.unpack(payload)  # raises RtpError on a bad payload
        self._seen.append(timestamp)
        return event.key
