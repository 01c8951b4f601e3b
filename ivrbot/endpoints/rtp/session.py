"""An RTP session for G.711 on an asyncio datagram endpoint: one SSRC sent, 20 ms packets
(160 samples at 8 kHz) sent when :meth:`RtpSession.send_pcm` / :meth:`send_payload` is
called (the caller's tick paces them; see :mod:`ivrbot.endpoints.rtp.leg`), RFC 4733 keys
in place of audio while a key is sent, and received packets checked by
:class:`~ivrbot.endpoints.rtp.sequencing.Sequencer` and decoded.

A new SSRC from the peer restarts the sequence rule (its numbering starts afresh); the
counts go on.

Symmetric RTP (``symmetric=True``, for a peer behind NAT): packets go to the address the
peer's packets come from, once one has come (before that, to ``remote``)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from ivrbot.endpoints.rtp import g711
from ivrbot.endpoints.rtp.packets import RtpError, RtpPacket
from ivrbot.endpoints.rtp.sequencing import Sequencer, Verdict
from ivrbot.endpoints.rtp.telephone_events import KeyReceiver, KeySender

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
EVENT_PAYLOAD_TYPE = 101  # telephone-event/8000, as SIP peers commonly offer it

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class RtpCounts:
    sent: int
    received: int
    lost: int
    late: int
    duplicates: int
    invalid: int


class RtpSession(asyncio.DatagramProtocol):
    def __init__(
        self,
        law: str = "PCMA",
        remote: Address | None = None,
        symmetric: bool = False,
        event_payload_type: int = EVENT_PAYLOAD_TYPE,
    ) -> None:
        if law not in g711.LAWS:
            raise ValueError(f"codec {law!r}: this RTP endpoint speaks {' or '.join(g711.LAWS)}")
        self.law = law
        self.payload_type = g711.PAYLOAD_TYPES[law]
        self.event_payload_type = event_payload_type
        self.remote = remote
        self.symmetric = symmetric
        self.ssrc = secrets.randbits(32)
        self.on_pcm: Callable[[np.ndarray], None] | None = None  # 8 kHz int16 of a packet
        self.on_payload: Callable[[bytes], None] | None = None  # raw G.711, when set instead
        self.on_key: Callable[[str], None] | None = None
        self.on_first_packet: Callable[[], None] | None = None
        self.on_error: Callable[[Exception], None] | None = None
        self.keys = KeySender(FRAME_SAMPLES)
        self._key_receiver = KeyReceiver()
        self._sequencer = Sequencer()
        self._sequence = secrets.randbits(16)
        self._timestamp = secrets.randbits(32)
        self._transport: asyncio.DatagramTransport | None = None
        self._peer_ssrc: int | None = None
        self.sent = self.received = self.invalid = 0

    @classmethod
    async def open(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        law: str = "PCMA",
        remote: Address | None = None,
        symmetric: bool = False,
        event_payload_type: int = EVENT_PAYLOAD_TYPE,
    ) -> RtpSession:
        """A session bound on ``host``:``port`` (0: any free port)."""
        session = cls(law, remote, symmetric, event_payload_type)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: session, local_addr=(host, port))
        return session

    @property
    def local_address(self) -> Address:
        assert self._transport is not None, "the session is not open"
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    @property
    def counts(self) -> RtpCounts:
        s = self._sequencer
        return RtpCounts(self.sent, self.received, s.lost, s.late, s.duplicates, self.invalid)

    # sending ---------------------------------------------------------------------------
    def send_pcm(self, pcm: np.ndarray) -> None:
        """Send 20 ms of 8 kHz int16 (160 samples) as one packet (or a key's packet)."""
        self.send_payload(g711.encode(pcm, self.law))

    def send_payload(self, payload: bytes) -> None:
        """Send one 20 ms G.711 payload, or in its place the event packet of a key being
        sent; the timestamp advances by 160 either way."""
        event = self.keys.tick(self._timestamp)
        if event is None:
            self._send(
                RtpPacket(self.payload_type, self._sequence, self._timestamp, self.ssrc, payload)
            )
        else:
            self._send(
                RtpPacket(
                    self.event_payload_type,
                    self._sequence,
                    event.timestamp,
                    self.ssrc,
                    event.payload,
                    event.marker,
                )
            )
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def _send(self, packet: RtpPacket) -> None:
        if self._transport is None or self.remote is None or self._transport.is_closing():
            return  # nowhere to send yet (symmetric, before the peer's first packet)
        self._transport.sendto(packet.pack(), self.remote)
        self._sequence = (self._sequence + 1) & 0xFFFF
        self.sent += 1

    # receiving -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            packet = RtpPacket.unpack(data)
        except RtpError:
            self.invalid += 1
            return
        if packet.ssrc != self._peer_ssrc:
            first = self._peer_ssrc is None
            if not first:  # the peer restarted its stream (a re-INVITE, a new device)
                log.info("RTP %s: new SSRC %08x", self.local_address, packet.ssrc)
                self._sequencer.restart()
            self._peer_ssrc = packet.ssrc
            if first and self.on_first_packet is not None:
                self.on_first_packet()
        self.received += 1
        if self.symmetric and addr != self.remote:
            log.info("RTP %s: sending to %s:%s (symmetric RTP)", self.local_address, *addr[:2])
            self.remote = addr[0], addr[1]
        if packet.payload_type == self.event_payload_type:
            self._on_event(packet)
        elif packet.payload_type == self.payload_type:
            if self._sequencer.accept(packet.sequence) is Verdict.PLAY:
                if self.on_payload is not None:
                    self.on_payload(packet.payload)
                elif self.on_pcm is not None:
                    self.on_pcm(g711.decode(packet.payload, self.law))
        else:
            self.invalid += 1

    def _on_event(self, packet: RtpPacket) -> None:
        self._sequencer.accept(packet.sequence)  # events share the stream's numbering
        try:
            key = self._key_receiver.accept(packet.timestamp, packet.payload)
        except RtpError:
            self.invalid += 1
            return
        if key is not None and self.on_key is not None:
            self.on_key(key)

    def error_received(self, exc: Exception) -> None:
        log.info("RTP %s: %s", self.local_address, exc)
        if self.on_error is not None:
            self.on_error(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.on_error is not None:
            self.on_error(exc)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
