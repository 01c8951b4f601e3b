"""The in-process path from a Phone to the gateway (a bot attached inside the gateway's
process): requests run the gateway's own routes on in-memory requests, the session's events
are read from its event channel, and the media of each call is the gateway's link, handed
over by object. No socket, no HTTP, no WebSocket, no SDP naming anything.

The gateway's side is :class:`ivrbot.wire.in_process.InProcessWire` (``gateway.in_process``);
this module only names what it needs of it (:class:`InProcess`), so the Phone does not
import the wire API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from ivrbot.core.channel import EventChannel
from ivrbot.core.endpoints import Endpoint
from ivrbot.endpoints.local.local_leg import LocalLeg
from ivrbot.endpoints.local.local_link import LocalLink
from ivrbot.phone.transport import GatewayUnreachable, LinkSource, Response, SessionGone


class InProcess(Protocol):
    """What the gateway in this process offers a Phone (ivrbot.wire.in_process)."""

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]: ...

    def channel(self, session_path: str, token: str | None) -> EventChannel | None: ...

    def endpoint_at(self, resource: str, token: str | None) -> Endpoint | None: ...

    def event_object(self, item: Any) -> dict[str, Any]: ...


class LocalTransport:
    """A Phone's :class:`~ivrbot.phone.transport.Transport` to the gateway in this process."""

    def __init__(self, gateway: InProcess) -> None:
        self.gateway = gateway
        self.token: str | None = None
        self.links: LinkSource | None = self  # every call's media: the gateway's link

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = dict(headers or {})
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        status, reply_headers, parsed = await self.gateway.request(method, path, body, all_headers)
        if status in (502, 503):
            raise GatewayUnreachable(f"{method} {path}: HTTP {status}")
        return Response(status, reply_headers, parsed)

    async def open_events(self, session_path: str) -> ChannelEvents:
        """The session's event channel, read directly (asked of the routes first, as a
        WebSocket is: the same checks, and SessionGone once the session is)."""
        resp = await self.request("POST", session_path + "/websockets")
        if resp.status == 404:
            raise SessionGone(session_path)
        channel = self.gateway.channel(session_path, self.token)
        if resp.status != 201 or channel is None:
            raise GatewayUnreachable(f"event channel refused: HTTP {resp.status} {resp.text}")
        return ChannelEvents(channel, self.gateway)

    def link_for(self, resource: str) -> LocalLink | None:
        """The gateway's media link of the call or conference at ``resource``."""
        endpoint = self.gateway.endpoint_at(resource, self.token)
        return endpoint.link if isinstance(endpoint, LocalLeg) else None

    async def close(self) -> None:
        return None


class ChannelEvents:
    """The event objects of a session's channel, until it closes (the session is gone)."""

    def __init__(self, channel: EventChannel, gateway: InProcess) -> None:
        self.channel = channel
        self.gateway = gateway
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        while not self._closed:
            batch = await self.channel.next_batch(None)
            if batch is None:
                return
            for item in batch:
                yield self.gateway.event_object(item)

    async def close(self) -> None:
        self._closed = True
