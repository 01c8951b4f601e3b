"""RTP packets (RFC 3550 fixed header: version 2, no CSRC, no extension, no padding on
send) and RFC 4733 telephone-event payloads."""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")
EVENT = struct.Struct("!BBH")
KEYS = "0123456789*#ABCD"
"""RFC 4733 events 0-15, in order."""


class RtpError(ValueError):
    """A datagram that is not an RTP packet this endpoint can read."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def pack(self) -> bytes:
        first = RTP_VERSION << 6
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return (
            HEADER.pack(
                first,
                second,
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
            + self.payload
        )

    @classmethod
    def unpack(cls, data: bytes) -> RtpPacket:
        if len(data) < HEADER.size:
            raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
        first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, not 2")
        start = HEADER.size + 4 * (first & 0x0F)  # CSRCs
        if first & 0x10:  # header extension: 4 bytes, then its length in words
            if len(data) < start + 4:
                raise RtpError("truncated header extension")
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data)
        if first & 0x20:  # padding: the last byte says how much
            end -= data[-1]
        if start > end:
            raise RtpError("header longer than the packet")
        return cls(
            second & 0x7F, sequence, timestamp, ssrc, bytes(data[start:end]), bool(second & 0x80)
        )


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 event payload: ``key`` ('0'-'9', '*', '#', 'A'-'D'), ``end`` bit,
    ``volume`` (0-63, in -dBm0), ``duration`` in timestamp units."""

    key: str
    end: bool
    volume: int
    duration: int

    def pack(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return EVENT.pack(KEYS.index(self.key), flags, min(self.duration, 0xFFFF))

    @classmethod
    def unpack(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < EVENT.size:
            raise RtpError(f"a telephone-event payload of {len(payload)} bytes")
        event, flags, duration = EVENT.unpack_from(payload)
        if event >= len(KEYS):
            raise RtpError(f"telephone-event {event} is not a key")
        return cls(KEYS[event], bool(flags & 0x80), flags & 0x3F, duration)
