"""A scripted gateway for unit tests of the Phone's own logic (no sockets, no media): it
answers each wire request from a table and records what the Phone sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from ivrbot.endpoints.local.local_link import LocalLink
from ivrbot.phone.transport import EventSource, GatewayUnreachable, LinkSource, Response

Answer = Response | Callable[[Any], Response] | type[Exception]


class FakeLinks:
    """The gateway's in-process media links by resource, made when first asked for (as the
    gateway's LocalLeg makes one for each call of an in-process session)."""

    def __init__(self) -> None:
        self.links: dict[str, LocalLink] = {}
        self.asked: list[str] = []

    def link_for(self, resource: str) -> LocalLink | None:
        self.asked.append(resource)
        return self.links.setdefault(resource, LocalLink(resource))


class FakeEvents:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closed = False

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while (item := await self.queue.get()) is not None:
            yield item
            self.queue.task_done()  # the Phone has handled it: deliver() returns

    async def deliver(self, obj: dict[str, Any]) -> None:
        """Send ``obj`` on the event channel and wait until the Phone has handled it."""
        self.queue.put_nowait(obj)
        await self.queue.join()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


class FakeTransport:
    """``answers``: ``(method, path)`` -> a Response, a function of the body, or an
    exception class to raise (e.g. :class:`GatewayUnreachable`). Unlisted: 404."""

    def __init__(self, answers: dict[tuple[str, str], Answer]) -> None:
        self.answers = answers
        self.token: str | None = None
        self.links: LinkSource | None = None  # FakeLinks: a Phone in the gateway's process
        self.sent: list[tuple[str, str, Any, dict[str, str]]] = []
        self.events = FakeEvents()
        self.closed = False

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        self.sent.append((method, path, body, dict(headers or {})))
        answer = self.answers.get((method, path), Response(404, {}, None))
        if isinstance(answer, type) and issubclass(answer, Exception):
            raise answer(f"{method} {path}")
        return answer(body) if callable(answer) else answer

    async def open_events(self, session_path: str) -> EventSource:
        if ("EVENTS", session_path) in self.answers:
            raise GatewayUnreachable("event channel refused")
        return self.events

    async def close(self) -> None:
        self.closed = True
