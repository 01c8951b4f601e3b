"""The wire API for a client in the gateway's own process (a bot attached inside it): the
app's own routes run on an in-memory request (no socket, no HTTP), its session's events are
taken from the session's event channel, and the media of its calls are found by object.

One way to do each thing: a request goes through the app's router and middlewares exactly as
one from the network does (the same checks, the same errors), only its bytes never leave the
process. What tells it apart is :data:`IN_PROCESS` on the request, which only this module
sets: a request from the network cannot claim it (there is no header for it), so no remote
client can ask for in-process media or skip the rate limits.
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ivrbot.core.channel import EventChannel
from ivrbot.core.endpoints import Endpoint
from ivrbot.core.events import SessionEvent
from ivrbot.core.sessions import Session
from ivrbot.wire.auth import digest
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import GATEWAY, IN_PROCESS, MAX_BODY, Handler
from ivrbot.wire.serialise import event_object

Reply = tuple[int, dict[str, str], Any]  # status, headers, the JSON body (None: none)


class _NoSocket(asyncio.Transport):
    """The transport of an in-memory request: nothing to read, write or close."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False


class _InMemory(BaseProtocol):
    """The protocol of an in-memory request: what aiohttp asks of a connection."""

    peername = None
    sockname = None
    ssl_context = None
    max_field_size = 8190
    max_line_length = 8190
    max_headers = 128

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.transport = _NoSocket()


class InProcessWire:
    """The app's routes, run in this process for a client that is here (see the module)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    @property
    def gateway(self) -> Gateway:
        return self.app[GATEWAY]

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """The app's answer to ``method path`` with ``body`` (JSON) and ``headers``."""
        loop = asyncio.get_running_loop()
        protocol = _InMemory(loop)
        all_headers = CIMultiDict(headers or {})
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
            payload = StreamReader(protocol, 2 * MAX_BODY, loop=loop)
            payload.feed_data(json.dumps(body).encode())
            payload.feed_eof()
        else:
            payload = EMPTY_PAYLOAD
        message = RawRequestMessage(
            method, path, HttpVersion11, CIMultiDictProxy(all_headers), (), False, None, False,
            False, URL(path),
        )  # fmt: skip
        request = web.Request(
            message, payload, protocol, None, None, loop,  # type: ignore[arg-type]
            client_max_size=MAX_BODY, remote="in-process",
        )  # fmt: skip
        request[IN_PROCESS] = True
        match_info = await self.app.router.resolve(request)
        match_info.add_app(self.app)
        match_info.freeze()
        request._match_info = match_info
        handler: Handler = match_info.handler
        for middleware in reversed(self.app.middlewares):
            handler = functools.partial(middleware, handler=handler)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # what the errors middleware lets through (3xx)
            response = exc
        return _reply(response)

    @staticmethod
    def event_object(item: SessionEvent) -> dict[str, Any]:
        """A channel item as the event object a client reads: the one place events leave
        the gateway for an in-process client (the WebSocket sends the same objects)."""
        return event_object(item)

    def session(self, session_path: str, token: str | None) -> Session | None:
        """The session at ``session_path`` if ``token`` owns it (None: not, or gone)."""
        session = self.gateway.sessions.get(session_path.rstrip("/").rsplit("/", 1)[-1])
        if session is None or session.token_digest != digest(token or ""):
            return None
        return session

    def channel(self, session_path: str, token: str | None) -> EventChannel | None:
        """The event channel of the session at ``session_path`` (None: not ``token``'s)."""
        session = self.session(session_path, token)
        return session.channel if session is not None else None

    def endpoint_at(self, resource: str, token: str | None) -> Endpoint | None:
        """The gateway's endpoint of the call or conference at ``resource`` (its path:
        ``/RTC/v1/sessions/{sid}/calls/{cid}`` or ``.../conferences/{cid}``), if ``token``'s."""
        head, _, cid = resource.rstrip("/").rpartition("/")
        session_path, _, kind = head.rpartition("/")
        session = self.session(session_path, token)
        if session is None:
            return None
        if kind == "calls":
            call = session.calls.get(cid)
            return call.endpoint if call is not None else None
        if kind == "conferences":
            cleg = self.gateway.conferences.leg_of(session, cid)
            return cleg.leg if cleg is not None else None
        return None


def _reply(response: web.StreamResponse) -> Reply:
    headers = dict(response.headers)
    raw = response.body if isinstance(response, web.Response) else None
    if not isinstance(raw, bytes) or not raw:
        return response.status, headers, None
    try:
        return response.status, headers, json.loads(raw)
    except ValueError:
        return response.status, headers, raw.decode(errors="replace")
