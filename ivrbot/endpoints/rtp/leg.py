"""A G.711 RTP leg as a call-core endpoint (:class:`ivrbot.core.endpoints.EndpointBase`):
what the bridge sends it (``out``, 48 kHz frames paced on the leg's clock) is resampled
to 8 kHz, encoded and sent one packet per frame; what arrives is decoded and handed to
``on_frame`` as 8 kHz mono frames (``OutboundAudio.push`` converts them, as it does
aiortc's G.711 frames); RFC 4733 keys both ways.

``connected`` is set by the peer's first packet; ``failed`` by a socket error (an ICMP
port unreachable, say). SDP is not negotiated here: the SIP part of issue 24 will offer
and answer (codec, payload types, addresses) and then make the leg with what was agreed,
so :meth:`RtpLeg.make_offer` and the other SDP methods raise NotImplementedError."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import numpy as np
from aiortc.mediastreams import MediaStreamError

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.core.endpoints import EndpointBase
from ivrbot.endpoints.rtp.session import FRAME_SAMPLES, SAMPLE_RATE, Address, RtpSession
from ivrbot.media.frames import Downsampler, frame_from_pcm

log = logging.getLogger(__name__)

NO_SDP = "SDP for RTP legs comes with the SIP signalling of issue 24 (not built yet)"


class RtpLeg(EndpointBase):
    def __init__(self, name: str, session: RtpSession, clock: Clock = REAL_CLOCK) -> None:
        super().__init__(name, clock)
        self.session = session
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._down = Downsampler(SAMPLE_RATE)
        self._pending = np.zeros(0, np.int16)
        self._received_pts = 0
        session.on_pcm = self._on_pcm
        session.on_key = self._on_rtp_key
        session.on_first_packet = self.connected.set
        session.on_error = self._on_error
        self._sender = asyncio.ensure_future(self._send_loop())

    @classmethod
    async def open(
        cls,
        name: str,
        host: str = "127.0.0.1",
        law: str = "PCMA",
        remote: Address | None = None,
        symmetric: bool = False,
        clock: Clock = REAL_CLOCK,
    ) -> RtpLeg:
        """A leg on a new session bound on a free port of ``host``."""
        session = await RtpSession.open(host, law=law, remote=remote, symmetric=symmetric)
        return cls(name, session, clock)

    # media -------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        try:
            while True:
                frame = await self.out.recv()  # paced: one 48 kHz frame per 20 ms
                self._pending = np.concatenate((self._pending, self._down.convert(frame)))
                # the resampler's first outputs are short (its delay): send a whole packet
                # per tick once there is one, so packets stay one per 20 ms
                if self._pending.size >= FRAME_SAMPLES:
                    self.session.send_pcm(self._pending[:FRAME_SAMPLES])
                    self._pending = self._pending[FRAME_SAMPLES:]
        except MediaStreamError:
            return  # the track stopped: the leg is closing

    def _on_pcm(self, pcm: np.ndarray) -> None:
        frame = frame_from_pcm(pcm, self._received_pts, SAMPLE_RATE)
        self._received_pts += pcm.size
        self._on_audio(frame)

    def _on_rtp_key(self, key: str) -> None:
        self._on_key(key, "rfc4733")

    def _on_error(self, exc: Exception) -> None:
        log.info("%s: RTP failed: %s", self.name, exc)
        self.failed.set()

    async def send_dtmf(self, tones: str) -> None:
        """Send ``tones`` as RFC 4733 events (in place of audio); returns once sent."""
        self.session.keys.add(tones)
        while not self.session.keys.idle and not self.closed:
            await self.out.clock.sleep(0.02)

    async def close(self) -> None:
        if self._start_closing():
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self.session.close()

    # negotiation: the SIP part's ----------------------------------------------------------
    async def make_offer(self) -> str:
        raise NotImplementedError(NO_SDP)

    async def answer_offer(self, sdp: str) -> str:
        raise NotImplementedError(NO_SDP)

    async def accept_answer(self, sdp: str) -> None:
        raise NotImplementedError(NO_SDP)

    async def renegotiate(self, sdp: str) -> str:
        raise NotImplementedError(NO_SDP)

    async def reoffer(self) -> str:
        raise NotImplementedError(NO_SDP)
