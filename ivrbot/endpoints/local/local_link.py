"""In-process media: a bot in the gateway's process exchanges audio frames and key events
with the gateway through function calls (no ICE, no DTLS, no codec, no socket).

Signalling stays the wire API (the bot is an ordinary Phone of the gateway, reaching it
through ivrbot.wire.in_process), so every call control feature works unchanged; only the
media differs. The gateway's side of a local session's call (``LocalLeg``) makes the link;
the other end is handed that object (the Phone finds it from its call's resource, the SIP
connector from its leg): nothing in an SDP names a link, so nothing a remote client sends
can reach one. What the two ends exchange as SDP (:func:`local_sdp`) only says the
direction, so that hold reads as it does on the wire.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import av
from aiortc import MediaStreamTrack

from ivrbot.media.tracks import FrameSink, pump
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)

KeySink = Callable[[str], None]
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def local_sdp(direction: str = "sendrecv") -> str:
    """What either end of a link puts in its offers and answers: only the direction."""
    return (
        "v=0\r\no=ivrbot 0 0 IN IP4 127.0.0.1\r\ns=ivrbot local media\r\nt=0 0\r\n"
        f"m=audio 9 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na={direction}\r\n"
    )


def direction_of(sdp: str) -> str:
    """The direction a local SDP says (sendrecv unless it says another)."""
    return next((d for d in DIRECTIONS[1:] if f"a={d}" in sdp), "sendrecv")


class _End:
    """What one end sends (a paced track), hears (a frame sink) and does with keys."""

    def __init__(self, sends: MediaStreamTrack, hears: FrameSink, keys: KeySink) -> None:
        self.sends, self.hears, self.keys = sends, hears, keys


class LocalLink:
    """A media link between the gateway (``gateway`` end) and an in-process endpoint."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gateway: _End | None = None
        self.endpoint: _End | None = None
        self.connected = asyncio.Event()
        self.closed = asyncio.Event()
        self._when_up: list[Callable[[], None]] = []
        self._when_closed: list[Callable[[], None]] = []
        self._tasks = TaskSet(f"local link {name}")

    def attach(self, side: str, sends: MediaStreamTrack, hears: FrameSink, keys: KeySink) -> None:
        """Plug in one end (``'gateway'`` or ``'endpoint'``); media flows once both are in."""
        if self.closed.is_set():
            raise ConnectionError(f"{self.name}: the local link is closed")
        end = _End(sends, hears, keys)
        if side == "gateway":
            self.gateway = end
        else:
            self.endpoint = end
        if self.gateway is not None and self.endpoint is not None and not self.connected.is_set():
            self._tasks.spawn(pump(self.gateway.sends, self._to_endpoint))
            self._tasks.spawn(pump(self.endpoint.sends, self._to_gateway))
            self.connected.set()
            log.debug("%s: local media up", self.name)
            for callback in self._when_up:
                callback()
            self._when_up.clear()

    def on_connected(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once both ends are in (now, if they are)."""
        if self.connected.is_set():
            callback()
        else:
            self._when_up.append(callback)

    def on_closed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the link closes (by either end)."""
        self._when_closed.append(callback)

    def _to_endpoint(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        return self.endpoint.hears(frame) if self.endpoint is not None else None

    def _to_gateway(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        return self.gateway.hears(frame) if self.gateway is not None else None

    def key(self, side: str, tone: str) -> None:
        """A key pressed at ``side``: the other end gets it."""
        other = self.endpoint if side == "gateway" else self.gateway
        if other is not None and not self.closed.is_set():
            other.keys(tone)

    def close(self) -> None:
        """Either end hangs up the media: both stop (the other end sees ``closed``)."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._tasks.cancel_all()
        self.gateway = self.endpoint = None
        callbacks, self._when_closed, self._when_up = self._when_closed, [], []
        for callback in callbacks:
            callback()
