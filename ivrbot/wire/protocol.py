"""The gateway's HTTP server connections: slow clients cut off, malformed requests answered
in JSON and logged in one line, an access log with the secrets taken out.

aiohttp's server has a keep-alive timeout (idle connections) but no limit on the time a
client takes to send a request's head: a client sending one byte a second holds its
connection forever. :class:`GuardedRequestHandler` closes a connection whose request head
is not complete ``header_timeout`` seconds after its first byte (with a 408 RequestError);
bodies are bounded by ``ivrbot.wire.http.body_middleware``. A request aiohttp cannot
parse (bad request line, header too long, invalid characters) gets a 400 RequestError
instead of aiohttp's text page, and one info line in the log instead of a traceback quoting
the request line (which may carry ``?access_token=``).

The handler and server classes hook into aiohttp's ``RequestHandler`` and ``Server``
(aiohttp 3.9 to 3.14); tests/wire/test_bad_input.py exercises every hook.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError
from aiohttp.web_request import BaseRequest

from ivrbot.errors import request_error
from ivrbot.redact import redact, redact_aiohttp_logs

log = logging.getLogger(__name__)
_QUOTED_BYTES = re.compile(r"""[:\s]*\bb['"].*$""")  # aiohttp quotes the bytes it refused
LINGERING_S = 2.0  # after an error answer, how long an unread body is drained


def json_error(status: int, message_id: str, *variables: str) -> web.Response:
    _, body = request_error(message_id, *variables)
    return web.json_response(body, status=status)


def one_line(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split()) or type(exc).__name__)[:200]


def parse_error_reason(exc: BaseException | None) -> str:
    """What was wrong with a request aiohttp could not parse, without the request's bytes
    (aiohttp's messages quote the offending line, token and all)."""
    if isinstance(exc, HttpProcessingError):
        text = exc.message if isinstance(exc.message, str) else str(exc.message)
    else:
        text = str(exc or "malformed request")
    if isinstance(exc, ContentEncodingError) and "decode" not in text:
        text = f"Can not decode content-encoding: {text}"
    kept = []
    for line in text.splitlines():
        line = _QUOTED_BYTES.sub("", line).strip().rstrip(":.")
        if line and not line.startswith("^"):
            kept.append(line)
    return redact(": ".join(kept) or "malformed request")[:200]


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with a request-head deadline and quiet parse errors."""

    def __init__(self, *args: Any, header_timeout: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._head_deadline: asyncio.TimerHandle | None = None
        self._last_payload: Any = None

    def _reading_head(self) -> bool:
        if self._upgraded or self._payload_parser is not None:
            return False  # a WebSocket: frames, not requests
        return self._last_payload is None or self._last_payload.is_eof()

    def data_received(self, data: bytes) -> None:
        if data and self._head_deadline is None and self._reading_head():
            self._head_deadline = self._loop.call_later(self._header_timeout, self._head_late)
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:
            self._cancel_head_deadline()
            if self._messages:
                self._last_payload = self._messages[-1][1]

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport is None or self._force_close:
            return
        if self._request_in_progress or self._messages:
            # a pipelined head behind a request still being answered: the answer goes first
            self._head_deadline = self._loop.call_later(self._header_timeout, self._head_late)
            return
        log.info(
            "closing a connection from %s: no complete request head within %s s",
            self._peer(),
            self._header_timeout,
        )
        _, body = request_error(
            "SVC0002", f"request (headers not received within {self._header_timeout:g} s)"
        )
        payload = json.dumps(body).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + payload)
        self.force_close()

    def _peer(self) -> str:
        peer = self.peername
        return str(peer[0]) if isinstance(peer, tuple) else str(peer or "-")

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_deadline()
        self._last_payload = None
        super().connection_lost(exc)

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """A broken body (bad chunking or compression) found while draining it after the
        answer, or a client gone: one info line, not aiohttp's "Unhandled exception"."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, RequestPayloadError | ConnectionError):
            log.info("closing a connection from %s: %s", self._peer(), one_line(exc))
            return
        super().log_exception(*args, **kwargs)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        reason = parse_error_reason(exc)
        log.info("malformed request from %s: %s (%d)", request.remote, reason, status)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        response = json_error(status, "SVC0002", f"request ({reason})")
        response.force_close()
        return response


class GuardedServer(web.Server):
    """aiohttp's protocol factory, making :class:`GuardedRequestHandler` connections."""

    header_timeout: float = 10.0

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs
        )


class RedactedAccessLogger(AbstractAccessLogger):
    """One INFO line per request on ``aiohttp.access``; the query string is redacted."""

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        try:
            target = redact(request.path_qs)
            major, minor = request.version
        except Exception:  # the placeholder request of a parse error
            target, major, minor = "-", 1, 1
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %s %.3fs',
            request.remote or "-",
            request.method,
            target,
            major,
            minor,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are :class:`GuardedRequestHandler` ones."""

    def __init__(
        self,
        app: web.Application,
        *,
        header_timeout: float,
        keepalive_timeout: float,
        access_log: bool = True,
    ) -> None:
        redact_aiohttp_logs()
        extra: dict[str, Any] = {}
        if access_log:
            extra["access_log_class"] = RedactedAccessLogger
        else:
            extra["access_log"] = None
        super().__init__(
            app,
            handle_signals=False,
            keepalive_timeout=keepalive_timeout,
            lingering_time=LINGERING_S,
            **extra,
        )
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = GuardedServer
        assert isinstance(server, GuardedServer)
        server.header_timeout = self._header_timeout
        return server
