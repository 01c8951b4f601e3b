"""The gateway's side of an in-process endpoint (a bot in this process): the surface of
:class:`ivrbot.endpoints.webrtc.leg.Leg`, over a :class:`ivrbot.endpoints.local.local_link.LocalLink` instead of
a peer connection. Frames go to the bot and come from it by function calls."""

from __future__ import annotations

from ivrbot.core.endpoints import EndpointBase, SdpError
from ivrbot.endpoints.local.local_link import LocalLink

ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def _direction(sdp: str) -> str:
    for direction in ("sendonly", "recvonly", "inactive"):
        if f"a={direction}" in sdp:
            return direction
    return "sendrecv"


class LocalLeg(EndpointBase):
    """A leg to a bot in this process (see :mod:`ivrbot.endpoints.local.local_link`)."""

    def __init__(self, name: str, link: LocalLink | None = None) -> None:
        super().__init__(name)
        self.link = link or LocalLink(name)
        self.connected = self.link.connected  # both ends are in
        self.failed = self.link.closed  # the link closed (by either end)
        self._sdp = self.link.sdp()
        self.link.attach("gateway", self.out, self._on_audio, self._on_local_key)

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
    def _on_local_key(self, tone: str) -> None:
        self._on_key(tone, "local")

    async def send_dtmf(self, tones: str) -> None:
        for tone in tones:
            self.link.key("gateway", tone)

    async def close(self) -> None:
        if self._start_closing():
            self.link.close()
