"""The remote path from a Phone to the gateway: HTTP requests and the WebSocket channel
(the :class:`~ivrbot.phone.transport.Transport` every Phone uses unless given another)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ivrbot.credentials import Credentials
from ivrbot.phone.transport import (
    GatewayUnreachable,
    LinkSource,
    Response,
    SessionGone,
    TokensRefused,
    request_token,
)  # fmt: skip

__all__ = [
    "EventStream", "GatewayUnreachable", "RemoteTransport", "Response", "SessionGone",
    "TokensRefused",
]  # fmt: skip

log = logging.getLogger(__name__)


class RemoteTransport:
    def __init__(self, base_url: str, timeout_s: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token: str | None = None
        self.links: LinkSource | None = None  # media over WebRTC
        self._http: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return self._http

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body) if body is not None else None
        try:
            async with self._session().request(
                method, self.base_url + path, data=data, headers=all_headers
            ) as resp:
                raw = await resp.read()
                try:
                    parsed: Any = json.loads(raw) if raw else None
                except ValueError:
                    parsed = raw.decode(errors="replace")
                if resp.status in (502, 503):
                    raise GatewayUnreachable(f"{method} {path}: HTTP {resp.status}")
                return Response(resp.status, dict(resp.headers), parsed)
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise GatewayUnreachable(f"{method} {path}: {exc or type(exc).__name__}") from exc

    async def open_events(self, session_path: str) -> EventStream:
        """Open the session's WebSocket event channel."""
        resp = await self.request("POST", session_path + "/websockets")
        if resp.status == 404:
            raise SessionGone(session_path)
        if resp.status != 201:
            raise GatewayUnreachable(f"event channel refused: HTTP {resp.status} {resp.text}")
        url = self.base_url + resp.headers["Location"]
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            ws = await self._session().ws_connect(url, headers=headers, heartbeat=20)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachable(f"event channel refused: {exc}") from exc
        return EventStream(ws)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


class EventStream:
    """Event objects arriving on an open WebSocket channel, until it closes."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                for item in json.loads(msg.data)["events"]["eventList"]:
                    yield item["eventObject"]
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnreachable(f"event channel lost: {exc}") from exc
        finally:
            await self.ws.close()

    async def close(self) -> None:
        await self.ws.close()


async def fetch_token(
    base_url: str, app_scope: str = "ACCOUNT_ID", credentials: Credentials | None = None
) -> str:
    """An access token from the gateway at ``base_url`` (``POST /tokens``), presenting
    ``credentials`` (default: the API key in ``IVRBOT_API_KEY``, if set).
    :class:`TokensRefused` when the gateway refuses these credentials (401/403)."""
    credentials = credentials if credentials is not None else Credentials.from_env()
    transport = RemoteTransport(base_url)
    try:
        return await request_token(transport, app_scope, credentials)
    finally:
        await transport.close()
