"""A Phone call's media, and its offer/answer, in one place: over WebRTC (an aiortc peer
connection with the gateway) or in-process (a bot in the gateway's process: frames by
function calls over the gateway's link, see :mod:`ivrbot.endpoints.local.local_link`).

The Phone's methods only say what they need (an offer, an answer to an offer, a new offer
with another direction, the answer to apply); which kind of media a call has follows from
the Phone's transport: a Phone in the gateway's process has in-process media on every call,
its link handed over by object (never named in an SDP).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

import av
from aiortc import (
    MediaStreamTrack,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from ivrbot.endpoints.local.local_link import LocalLink, local_sdp
from ivrbot.endpoints.webrtc import rfc4733
from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.tracks import pump
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)

FrameSink = Callable[[av.AudioFrame], Awaitable[None] | None]


class MediaHost(ABC):
    """What a call's media reports to its call (the Phone's Call implements it)."""

    @property
    @abstractmethod
    def media_name(self) -> str: ...

    @abstractmethod
    def on_media_frame(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        """A frame heard from the far end."""

    @abstractmethod
    def on_media_key(self, tone: str, method: str) -> None:
        """A key the far end pressed."""

    @abstractmethod
    def on_media_up(self) -> None:
        """Media flows both ways."""

    @abstractmethod
    def on_media_lost(self) -> None:
        """The media failed or the far side went away (not closed by us)."""


class CallMedia(ABC):
    """A call's media: sends ``track``, tells ``host`` what it hears."""

    kind = ""

    def __init__(self, host: MediaHost, track: MediaStreamTrack) -> None:
        self.host = host
        self.track = track
        self.closed = False

    @abstractmethod
    async def offer(self) -> str:
        """The first offer of this call (dial, starting a conference)."""

    @abstractmethod
    async def answer(self, offer: str) -> str:
        """Take the far end's offer (the first one, or a new one) and answer it."""

    @abstractmethod
    async def accept_answer(self, sdp: str) -> None:
        """Apply the answer to this side's last offer (ignored when none is waiting)."""

    @property
    @abstractmethod
    def negotiated(self) -> bool:
        """An offer and its answer have been exchanged once."""

    @property
    @abstractmethod
    def up(self) -> bool:
        """Media flows."""

    @abstractmethod
    async def reoffer(self, direction: str) -> str:
        """A new offer of the same media with ``direction`` (sendonly to hold, sendrecv);
        :meth:`revert` undoes the direction when the request carrying it fails."""

    @abstractmethod
    def revert(self) -> None: ...

    @abstractmethod
    async def send_dtmf(self, tones: str, gap_ms: int) -> bool:
        """Send keys (False: this media cannot)."""

    @abstractmethod
    async def _close(self) -> None: ...

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._close()


class RtcMedia(CallMedia):
    """Media over an aiortc peer connection with the gateway."""

    kind = "webrtc"

    def __init__(
        self,
        host: MediaHost,
        track: MediaStreamTrack,
        ice_servers: list[RTCIceServer] | None = None,
        ice_transport: str = "all",
    ) -> None:
        super().__init__(host, track)
        self.pc: RTCPeerConnection = new_peer_connection(ice_servers, ice_transport)
        self._tasks = TaskSet(f"{host.media_name} media")
        self._dtmf: rfc4733.DtmfSender | None = None
        self._track_added = False
        self._before: list[str] = []
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def _add_track(self) -> None:
        if not self._track_added:
            self.pc.addTrack(self.track)
            self._track_added = True

    async def offer(self) -> str:
        self._add_track()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        self._add_track()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def accept_answer(self, sdp: str) -> None:
        if self.pc.signalingState == "have-local-offer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    @property
    def negotiated(self) -> bool:
        return self.pc.remoteDescription is not None

    @property
    def up(self) -> bool:
        return bool(self.pc.connectionState == "connected")

    def _audio(self) -> list[RTCRtpTransceiver]:
        return [t for t in self.pc.getTransceivers() if t.kind == "audio"]

    async def reoffer(self, direction: str) -> str:
        audio = self._audio()
        self._before = [t.direction for t in audio]
        for transceiver in audio:
            transceiver.direction = direction
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    def revert(self) -> None:
        for transceiver, old in zip(self._audio(), self._before, strict=False):
            transceiver.direction = old

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        audio = self._audio()
        if audio:
            rfc4733.on_telephone_event(audio[0].receiver, self._on_telephone_event)
        self._tasks.spawn(pump(track, self.host.on_media_frame))

    def _on_telephone_event(self, event: rfc4733.DtmfEvent) -> None:
        self.host.on_media_key(event.tone, "rfc4733")

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self.host.on_media_up()
        elif state in ("failed", "closed") and not self.closed:
            # the gateway stopped answering ICE consent checks, or its side went away
            self.host.on_media_lost()

    async def send_dtmf(self, tones: str, gap_ms: int) -> bool:
        audio = self._audio()
        if not audio:
            return False
        if self._dtmf is None:
            self._dtmf = rfc4733.DtmfSender(audio[0].sender)
        if not self._dtmf.can_insert_dtmf:
            return False
        await self._dtmf.send(tones, gap_ms=gap_ms)
        return True

    async def _close(self) -> None:
        try:
            await self.pc.close()
        finally:
            rfc4733.release_peer(self.pc)
        self._tasks.cancel_all()


class LocalMedia(CallMedia):
    """Media with the gateway in this process (a bot attached inside the gateway): the
    gateway's side of the call makes the link, ``find_link`` hands it over once the gateway
    has the call (its offer to us, or its answer to ours)."""

    kind = "local"

    def __init__(
        self,
        host: MediaHost,
        track: MediaStreamTrack,
        find_link: Callable[[], LocalLink | None],
    ) -> None:
        super().__init__(host, track)
        self.link: LocalLink | None = None
        self._find_link = find_link
        self._awaiting_answer = False
        self._direction = "sendrecv"
        self._before = "sendrecv"

    def _attach(self) -> None:
        if self.link is not None:
            return
        link = self._find_link()
        if link is None:
            raise ValueError("the gateway has no in-process media for this call")
        self.link = link
        link.attach("endpoint", self.track, self.host.on_media_frame, self._on_key)
        link.on_connected(self.host.on_media_up)  # now: the gateway's end is in
        link.on_closed(self._on_closed)

    async def offer(self) -> str:
        self._awaiting_answer = True  # the gateway makes the link when it takes the offer
        return local_sdp()

    async def answer(self, offer: str) -> str:
        self._attach()
        return local_sdp()

    async def accept_answer(self, sdp: str) -> None:
        if self._awaiting_answer:
            self._attach()
            self._awaiting_answer = False

    @property
    def negotiated(self) -> bool:
        return self.link is not None and not self._awaiting_answer

    @property
    def up(self) -> bool:
        return self.link is not None and self.link.connected.is_set() and not self.closed

    async def reoffer(self, direction: str) -> str:
        self._before, self._direction = self._direction, direction
        self._awaiting_answer = True
        return local_sdp(direction)

    def revert(self) -> None:
        self._direction = self._before
        self._awaiting_answer = False

    def _on_key(self, tone: str) -> None:
        self.host.on_media_key(tone, "rfc4733")  # what the gateway forwards are RFC 4733 keys

    def _on_closed(self) -> None:
        if not self.closed:
            self.host.on_media_lost()

    async def send_dtmf(self, tones: str, gap_ms: int) -> bool:
        if self.link is None:
            return False
        for tone in tones:
            self.link.key("endpoint", tone)
        return True

    async def _close(self) -> None:
        if self.link is not None:
            self.link.close()
