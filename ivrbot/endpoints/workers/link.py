"""The gateway <-> worker link: newline-delimited JSON over a socket pair, both ways.

A request carries an ``id`` and waits for the reply with that id; anything else is a
message for the other side's handler (events, ``ready``). Errors a call operation raises
on the worker (a call in the wrong state, a bad SDP, a request error) cross as data and
are raised again on the gateway's side, so the client gets the same answer as for a call
in the gateway's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ivrbot.core.call_state import CallPhase
from ivrbot.core.endpoints import SdpError
from ivrbot.core.merge import NoSuchConference
from ivrbot.errors import IvrbotError
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)
Message = dict[str, Any]
Handler = Callable[[Message], Awaitable[Message | None] | Message | None]
REQUEST_TIMEOUT_S = 30.0
LINE_LIMIT = 4 * 1024 * 1024  # an SDP is a few kB; a settings message some more


class WorkerGone(IvrbotError):
    """The worker process stopped (or its link closed) before it answered."""


class WorkerFailed(IvrbotError):
    """The worker raised something the gateway has no wire answer for (logged there)."""


def error_data(exc: BaseException) -> Message:
    """``exc`` as data for the other side (see :func:`raise_error`)."""
    from ivrbot.core.call_state import CallStateError
    from ivrbot.wire.http import ApiError

    if isinstance(exc, CallStateError):
        return {"kind": "call-state", "action": exc.action, "state": str(exc.state)}
    if isinstance(exc, SdpError):
        return {"kind": "sdp", "text": str(exc)}
    if isinstance(exc, ApiError):
        return {"kind": "api", "id": exc.message_id, "vars": list(exc.variables),
                "status": exc.status}  # fmt: skip
    if isinstance(exc, NoSuchConference):
        return {"kind": "no-conference", "text": str(exc)}
    if isinstance(exc, web.HTTPNotFound):
        return {"kind": "not-found", "text": exc.text or ""}
    return {"kind": "failed", "text": f"{type(exc).__name__}: {exc}"}


def raise_error(data: Message) -> None:
    """Raise what :func:`error_data` described."""
    from ivrbot.core.call_state import CallStateError
    from ivrbot.wire.http import ApiError

    kind = data.get("kind")
    if kind == "call-state":
        raise CallStateError(str(data["action"]), CallPhase(data["state"]))
    if kind == "sdp":
        raise SdpError(str(data["text"]))
    if kind == "api":
        raise ApiError(str(data["id"]), *map(str, data["vars"]), status=data["status"])
    if kind == "no-conference":
        raise NoSuchConference(str(data["text"]))
    if kind == "not-found":
        raise web.HTTPNotFound(text=str(data["text"]))
    raise WorkerFailed(f"the media worker failed: {data.get('text', '')}")


class Link:
    """One end of the link. ``handler`` gets every message that is not a reply; for a
    request (it has an ``id``) what it returns is the reply."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, name: str
    ) -> None:
        self.reader, self.writer, self.name = reader, writer, name
        self.handler: Handler = lambda message: None
        self.closed = asyncio.Event()
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._tasks = TaskSet(f"link {name}")

    @classmethod
    async def over(cls, sock: Any, name: str) -> Link:
        reader, writer = await asyncio.open_connection(sock=sock, limit=LINE_LIMIT)
        return cls(reader, writer, name)

    def send(self, message: Message) -> None:
        """Send without waiting for an answer (an event, a notice); dropped once closed."""
        if self.closed.is_set():
            return
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        self.writer.write(line.encode() + b"\n")

    async def request(self, op: str, **fields: Any) -> Message:
        """Send ``op`` and wait for its reply; the other side's error is raised here."""
        if self.closed.is_set():
            raise WorkerGone(f"{self.name} has stopped")
        rid = next(self._ids)
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            self.send({"id": rid, "op": op, **fields})
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                reply = await future
        except TimeoutError:
            raise WorkerFailed(
                f"{self.name} did not answer {op} in {REQUEST_TIMEOUT_S:g} s"
            ) from None
        finally:
            self._waiting.pop(rid, None)
        if "error" in reply:
            raise_error(reply["error"])
        return reply

    async def serve(self) -> None:
        """Read until the other side closes; then every request still waiting fails."""
        try:
            while line := await self.reader.readline():
                message = json.loads(line)
                if "reply" in message:
                    future = self._waiting.get(message["reply"])
                    if future is not None and not future.done():
                        future.set_result(message)
                elif "id" in message:
                    self._tasks.spawn(self._answer(message))
                else:
                    result = self.handler(message)
                    if inspect.isawaitable(result):
                        self._tasks.spawn(_wait(result))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
            log.info("%s: link closed (%s)", self.name, exc)
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(WorkerGone(f"{self.name} has stopped"))
            self._tasks.cancel_all()

    async def _answer(self, request: Message) -> None:
        reply: Message
        try:
            result = self.handler(request)
            if inspect.isawaitable(result):
                result = await result
            reply = {"reply": request["id"], **(result or {})}
        except Exception as exc:
            data = error_data(exc)
            if data["kind"] == "failed":
                log.exception("%s: %s failed", self.name, request.get("op"))
            reply = {"reply": request["id"], "error": data}
        self.send(reply)

    async def close(self) -> None:
        self.closed.set()
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


async def _wait(result: Awaitable[object]) -> None:
    await result
