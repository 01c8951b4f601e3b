"""A leg: one endpoint's WebRTC peer connection with the gateway, media anchored here."""

from __future__ import annotations

import asyncio
import logging

from aiortc import MediaStreamTrack, RTCRtpTransceiver, RTCSessionDescription

from ivrbot.core.endpoints import EndpointBase, SdpError
from ivrbot.endpoints.webrtc import hotpath, rfc4733
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.endpoints.webrtc.reoffer import stable_offer
from ivrbot.endpoints.webrtc.sdpcheck import sdp_problem
from ivrbot.media.tracks import pump
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)


class Leg(EndpointBase):
    """The gateway's side of one endpoint's media over an aiortc peer connection: it sends
    ``out``, receives into ``on_frame``. ``prefetch``: the audio frames its receive buffer
    waits for before it hands one on (default ``hotpath.GATEWAY_PREFETCH``)."""

    def __init__(self, name: str, prefetch: int | None = None) -> None:
        super().__init__(name)
        self._prefetch = hotpath.GATEWAY_PREFETCH if prefetch is None else prefetch
        self.pc = new_peer_connection()
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self._tasks = TaskSet(f"leg {name}")
        self._dtmf: rfc4733.DtmfSender | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    # negotiation -------------------------------------------------------------------------
    async def make_offer(self) -> str:
        self.pc.addTrack(self.out)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept_offer(self, sdp: str) -> None:
        """Take the endpoint's offer now; the answer is made by :meth:`make_answer`."""
        await self._set_remote(sdp, "offer")
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if not audio:
            raise SdpError("the SDP offer has no audio section (m=audio)")
        self.pc.addTrack(self.out)

    async def answer_offer(self, sdp: str) -> str:
        """Take the endpoint's offer and answer it at once; the leg is closed if it fails."""
        try:
            await self.accept_offer(sdp)
            return await self.make_answer()
        except Exception:
            await self.close()
            raise

    async def make_answer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self._set_remote(sdp, "answer")

    async def renegotiate(self, sdp: str) -> str:
        """The endpoint's new offer on a live leg (hold ``a=sendonly``, resume, a media
        change): taken and answered at once (``a=recvonly`` to a ``sendonly`` offer)."""
        await self._set_remote(sdp, "offer")
        return await self.make_answer()

    async def reoffer(self) -> str:
        """A new offer of this live leg's media (the endpoint answers it later), with the
        numbering negotiated before (see :mod:`ivrbot.endpoints.webrtc.reoffer`)."""
        return await stable_offer(self.pc)

    async def _set_remote(self, sdp: str, kind: str) -> None:
        if not isinstance(sdp, str) or not sdp.strip().startswith("v=0"):
            raise SdpError(f"the SDP {kind} must be a session description starting with 'v=0'")
        problem = sdp_problem(sdp, kind)
        if problem is not None:
            raise SdpError(problem)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:  # aiortc raises ValueError and friends on bad SDP
            why = str(exc) or type(exc).__name__
            raise SdpError(f"the SDP {kind} cannot be used: {why}") from exc

    # media --------------------------------------------------------------------------------
    def _audio_transceiver(self) -> RTCRtpTransceiver | None:
        return next((t for t in self.pc.getTransceivers() if t.kind == "audio"), None)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        transceiver = self._audio_transceiver()
        if transceiver is not None:
            hotpath.hold_back(transceiver.receiver, self._prefetch)
            # forwarded at the press's first packet: the far end hears of it a press sooner
            rfc4733.on_telephone_event(
                transceiver.receiver, self._on_telephone_event, at_begin=True
            )
        self._tasks.spawn(pump(track, self._on_audio))

    def _on_telephone_event(self, event: rfc4733.DtmfEvent) -> None:
        self._on_key(event.tone, "RFC 4733")

    async def send_dtmf(self, tones: str) -> None:
        """Send keypad tones to this endpoint as RFC 4733 events (when it negotiated them)."""
        if self._dtmf is None:
            transceiver = self._audio_transceiver()
            if transceiver is None:
                return
            self._dtmf = rfc4733.DtmfSender(transceiver.sender)
        if self._dtmf.can_insert_dtmf:
            await self._dtmf.send(tones)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("%s: connection %s", self.name, state)
        if state == "connected":
            self.connected.set()
        elif state in ("failed", "closed"):
            if not self._closed and self.connected.is_set():
                log.info("%s: the peer is gone (connection %s)", self.name, state)
            self.failed.set()

    async def close(self) -> None:
        if not self._start_closing():
            return
        try:
            await self.pc.close()
        finally:
            rfc4733.release_peer(self.pc)
        self.failed.set()  # whoever watches the leg stops watching
        self._tasks.cancel_all()
