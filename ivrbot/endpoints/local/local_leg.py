"""The gateway's side of an in-process endpoint (a bot in this process, a SIP call's PCM
port): the surface of :class:`ivrbot.endpoints.webrtc.leg.Leg`, over a
:class:`~ivrbot.endpoints.local.local_link.LocalLink` instead of a peer connection. The leg
makes the link; the far end is handed it (``leg.link``). Frames and keys go by function
calls; the SDP exchanged only says the direction (hold)."""

from __future__ import annotations

from ivrbot.core.endpoints import EndpointBase
from ivrbot.endpoints.local.local_link import LocalLink, direction_of, local_sdp

ANSWER_DIRECTION = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class LocalLeg(EndpointBase):
    """A leg to an endpoint in this process (see :mod:`ivrbot.endpoints.local.local_link`)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.link = LocalLink(name)
        self.connected = self.link.connected  # both ends are in
        self.failed = self.link.closed  # the link closed (by either end)
        self._sdp = local_sdp()
        self.link.attach("gateway", self.out, self._on_audio, self._on_local_key)

    # negotiation: the SDP only says the direction --------------------------------------------
    async def make_offer(self) -> str:
        return self._sdp

    async def answer_offer(self, sdp: str) -> str:
        return self._sdp

    async def accept_answer(self, sdp: str) -> None:
        return None

    async def renegotiate(self, sdp: str) -> str:
        self._sdp = local_sdp(ANSWER_DIRECTION.get(direction_of(sdp), "sendrecv"))
        return self._sdp

    async def reoffer(self) -> str:
        self._sdp = local_sdp()
        return self._sdp

    @property
    def local_sdp(self) -> str:
        return self._sdp

    # media -------------------------------------------------------------------------------
    def _on_local_key(self, tone: str) -> None:
        self._on_key(tone, "local")

    async def send_dtmf(self, tones: str) -> None:
        for tone in tones:
            self.link.key("gateway", tone)

    async def close(self) -> None:
        if self._start_closing():
            self.link.close()
