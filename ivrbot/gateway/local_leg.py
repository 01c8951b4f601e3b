"""The gateway's side of an in-process endpoint (a bot in this process): the surface of
:class:`ivrbot.gateway.leg.Leg`, over a :class:`ivrbot.media.local_link.LocalLink` instead of
a peer connection. Frames go to the bot and come from it by function calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import av

from ivrbot.gateway.leg import SdpError
from ivrbot.media.local_link import LocalLink
from ivrbot.media.tracks import OutboundAudio

log = logging.getLogger(__name__)

ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def _direction(sdp: str) -> str:
    for direction in ("sendonly", "recvonly", "inactive"):
        if f"a={direction}" in sdp:
            return direction
    return "sendrecv"


class LocalLeg:
    """A leg to a bot in this process (see :mod:`ivrbot.media.local_link`)."""

    def __init__(self, name: str, link: LocalLink | None = None) -> None:
        self.name = name
        self.link = link or LocalLink(name)
        self.out = OutboundAudio()
        self.on_frame: Callable[[av.AudioFrame], None] | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self.connected = self.link.connected  # both ends are in
        self.failed = self.link.closed  # the link closed (by either end)
        self._closed = False
        self._sdp = self.link.sdp()
        self.link.attach("gateway", self.out, self._on_audio, self._on_key)

    # negotiation: the SDP only names the link ------------------------------------------------
    async def make_offer(self) -> str:
        return self._sdp

    async def answer_offer(self, sdp: str) -> str:
        self._check(sdp)
        return self._sdp

    async def accept_answer(self, sdp: str) -> None:
        self._check(sdp)

    async def renegotiate(self, sdp: str) -> str:
        self._check(sdp)
        self._sdp = self.link.sdp(ANSWER_DIRECTION.get(_direction(sdp), "sendrecv"))
        return self._sdp

    async def reoffer(self) -> str:
        self._sdp = self.link.sdp()
        return self._sdp

    @property
    def local_sdp(self) -> str:
        return self._sdp

    def _check(self, sdp: str) -> None:
        if LocalLink.find(sdp) is not self.link:
            raise SdpError("the SDP does not name this in-process media link")

    # media -------------------------------------------------------------------------------
    def _on_audio(self, frame: av.AudioFrame) -> None:
        if self.on_frame is not None:
            self.on_frame(frame)

    def _on_key(self, tone: str) -> None:
        log.info("%s: received DTMF %s (local)", self.name, tone)
        if self.on_dtmf is not None:
            self.on_dtmf(tone)

    async def send_dtmf(self, tones: str) -> None:
        for tone in tones:
            self.link.key("gateway", tone)

    async def wait_connected(self, timeout: float) -> bool:
        if not self.connected.is_set():
            try:
                await asyncio.wait_for(self.connected.wait(), timeout)
            except TimeoutError:
                return False
        return not self.failed.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.on_frame = None
        self.on_dtmf = None
        self.out.stop()
        self.link.close()
