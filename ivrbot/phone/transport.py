"""How a Phone reaches the gateway: the transport interface, its responses and failures.

The Phone only ever calls :class:`Transport`: ``request`` for the wire API's calls,
``open_events`` for the session's event channel and ``links`` for in-process media.
:class:`~ivrbot.phone.transport_remote.RemoteTransport` (aiohttp, HTTP + WebSocket) is the
one every Phone uses by default; :class:`~ivrbot.phone.transport_local.LocalTransport`
reaches a gateway in the same process without a socket (a bot attached inside it); tests of
the Phone's own logic inject a scripted one (``Phone(url, transport=...)``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ivrbot.credentials import Credentials
    from ivrbot.endpoints.local.local_link import LocalLink


class GatewayUnreachable(Exception):
    """The gateway did not answer (connection refused, reset, timed out, 502/503)."""


class TokensRefused(Exception):
    """``POST /tokens`` answered 401 or 403: the gateway runs, but not for these credentials
    (none outside development mode, a wrong API key or client secret)."""

    def __init__(self, status: int, reason: str, presented: Credentials | None = None) -> None:
        super().__init__(f"POST /tokens: HTTP {status} {reason}".strip())
        self.status, self.reason = status, reason
        self.presented = presented  # what was refused (None: not known)


class SessionGone(Exception):
    """The gateway no longer knows the session (404): it expired or was deleted."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def _error(self, key: str) -> str | None:
        """``key`` of a JSON ``RequestError`` body (None when the body is not one)."""
        try:
            error = self.body["RequestError"]
            inner = error.get("ServiceException") or error.get("PolicyException")
            return str(inner[key])
        except (TypeError, KeyError, AttributeError):
            return None

    @property
    def message_id(self) -> str | None:
        return self._error("MessageId")

    @property
    def text(self) -> str:
        found = self._error("Text")
        return found if found is not None else str(self.body or "")


class EventSource(Protocol):
    """A session's open event channel: event objects until it closes."""

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    async def close(self) -> None: ...


class LinkSource(Protocol):
    """The gateway's in-process media links, for a Phone in its process."""

    def link_for(self, resource: str) -> LocalLink | None:
        """The link of the call or conference at ``resource`` (its path on the wire)."""
        ...


class Transport(Protocol):
    token: str | None  # the access token sent with every request once logged in
    # the gateway's media links when it is in this process (None: WebRTC media)
    links: LinkSource | None

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One wire API call; raises :class:`GatewayUnreachable` when nobody answers."""
        ...

    async def open_events(self, session_path: str) -> EventSource:
        """The session's event channel; :class:`SessionGone` if the gateway forgot it."""
        ...

    async def close(self) -> None: ...


async def request_token(transport: Transport, app_scope: str, credentials: Credentials) -> str:
    """An access token from the gateway's app server (``POST /tokens``), presenting
    ``credentials``; :class:`TokensRefused` when the gateway refuses them (401/403)."""
    resp = await transport.request("POST", "/tokens", {"app_scope": app_scope},
                                   credentials.headers())  # fmt: skip
    if resp.status in (401, 403):
        raise TokensRefused(resp.status, resp.text, credentials)
    if resp.status != 200:
        raise GatewayUnreachable(f"POST /tokens: HTTP {resp.status} {resp.text}")
    return str(resp.body["access_token"])
