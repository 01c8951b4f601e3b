"""What the call core bridges: endpoints, one small surface (frames out through ``out``,
frames in through ``on_frame``, keys both ways, connected / failed / closed). The kinds live
in ivrbot/endpoints (an aiortc peer connection for browsers and remote Phones, an in-process
bot); the switch and the conference service make them through :class:`EndpointKinds`, so
the core imports no media stack."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import av

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.media.tracks import OutboundAudio

if TYPE_CHECKING:
    from ivrbot.core.sessions import Session

log = logging.getLogger(__name__)


class SdpError(ValueError):
    """An SDP the gateway cannot use; the message says what is wrong."""


class EndpointBase:
    """What every kind of endpoint shares (see ivrbot.core.endpoints): the audio it is
    sent (``out``), where the audio and keys it sends go (``on_frame``, ``on_dtmf``: the
    bridge sets them), and closing once. ``out`` is paced on ``clock``."""

    def __init__(self, name: str, clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.out = OutboundAudio(clock)
        self.on_frame: Callable[[av.AudioFrame], None] | None = None
        self.on_dtmf: Callable[[str], None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """Closed by the gateway (an endpoint that failed by itself is not, until then)."""
        return self._closed

    def _on_audio(self, frame: av.AudioFrame) -> None:
        if self.on_frame is not None:
            self.on_frame(frame)

    def _on_key(self, tone: str, how: str) -> None:
        log.info("%s: received DTMF %s (%s)", self.name, tone, how)
        if self.on_dtmf is not None:
            self.on_dtmf(tone)

    def _start_closing(self) -> bool:
        """Leave the bridge and stop sending; False when it was closed already."""
        if self._closed:
            return False
        self._closed = True
        self.on_frame = None
        self.on_dtmf = None
        self.out.stop()
        return True


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

    async def close(self) -> None: ...


async def media_up(endpoint: Endpoint, timeout: float, clock: Clock = REAL_CLOCK) -> bool:
    """True once ``endpoint``'s media is up (``connected``); False when it failed first, or
    ``timeout`` seconds passed first on ``clock``."""
    if not endpoint.connected.is_set() and not endpoint.failed.is_set():
        waits = {
            asyncio.ensure_future(endpoint.connected.wait()),
            asyncio.ensure_future(endpoint.failed.wait()),
        }
        try:
            await clock.wait_for(asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), timeout)
        except TimeoutError:
            pass
        finally:
            for wait in waits:
                wait.cancel()  # the one still waiting would otherwise wait until the leg closes
    return endpoint.connected.is_set() and not endpoint.failed.is_set()


class EndpointKinds(Protocol):
    """Makes the endpoint for a call's party (ivrbot.endpoints.kinds is the real one)."""

    def for_session(self, name: str, session: Session) -> Endpoint:
        """The endpoint of ``session``'s party in a call or conference (it takes the
        session's offer, or makes one to ring it); its kind follows from the session,
        never from an offer's text."""
        ...
