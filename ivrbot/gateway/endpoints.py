"""What the gateway bridges: endpoints, one small surface (frames out through ``out``,
frames in through ``on_frame``, keys both ways, connected / failed / closed) with two kinds:
an aiortc peer connection (:class:`~ivrbot.gateway.leg.Leg`: browsers, remote Phones) and
an in-process bot (:class:`~ivrbot.gateway.local_leg.LocalLeg`). The switch and the
conference service make every endpoint here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import av

from ivrbot.gateway.leg import Leg, SdpError
from ivrbot.gateway.local_leg import LocalLeg
from ivrbot.media.local_link import LocalLink
from ivrbot.media.tracks import OutboundAudio

if TYPE_CHECKING:
    from ivrbot.gateway.sessions import Session


class Endpoint(Protocol):
    name: str
    out: OutboundAudio
    on_frame: Callable[[av.AudioFrame], None] | None
    on_dtmf: Callable[[str], None] | None
    connected: asyncio.Event
    failed: asyncio.Event

    @property
    def closed(self) -> bool: ...

    async def make_offer(self) -> str: ...

    async def answer_offer(self, sdp: str) -> str: ...

    async def accept_answer(self, sdp: str) -> None: ...

    async def renegotiate(self, sdp: str) -> str: ...

    async def reoffer(self) -> str: ...

    async def send_dtmf(self, tones: str) -> None: ...

    async def wait_connected(self, timeout: float) -> bool: ...

    async def close(self) -> None: ...


def endpoint_for_offer(name: str, sdp: object) -> Endpoint:
    """The endpoint that takes an offer: in-process when it names a local link of this
    process, else a WebRTC leg."""
    if LocalLink.is_local(sdp):
        link = LocalLink.find(sdp)
        if link is None:
            raise SdpError("the SDP names an in-process media link this gateway does not have")
        return LocalLeg(name, link)
    return Leg(name)


def endpoint_for_session(name: str, session: Session) -> Endpoint:
    """The endpoint that rings ``session``: in-process for a bot in this process."""
    return LocalLeg(name) if session.local else Leg(name)
