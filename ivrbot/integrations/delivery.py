"""Delivering webhooks in the background: signed JSON POSTs, in order per call, retried
with backoff, never waited for by a call.

:meth:`WebhookSender.send` only queues: each key (a call's id, a campaign's name) has a
queue of its own that one task works through, so a key's events arrive in the order they
happened while other keys go on. A try that fails with a connection error, a timeout or a
5xx is tried again after ``backoff_s``, then twice as long each time, up to ``tries``
tries; a 3xx or 4xx is not tried again (the receiver refused it). An event given up on is
one WARNING line naming the event, the URL and the status, counted in ``/metrics``
(``ivrbot_webhooks_failed_total``) and listed by :meth:`WebhookSender.status` (the
dashboard's webhooks panel).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from ivrbot import __version__, metrics
from ivrbot.integrations.signing import EVENT_HEADER, signed_headers
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)
# (url, body, headers, timeout_s) -> the HTTP status; raises OSError, TimeoutError or
# aiohttp.ClientError when no response came
Poster = Callable[[str, bytes, dict[str, str], float], Awaitable[int]]
Sleep = Callable[[float], Awaitable[None]]
MAX_PENDING = 10_000  # events queued in all; past it new ones are dropped (and counted failed)
RECENT = 20  # failures kept for the dashboard
CLOSE_GRACE_S = 2.0  # at shutdown, how long queued events may still go out


def backoff_delays(tries: int, first_s: float) -> list[float]:
    """The waits between ``tries`` tries: first_s, then doubling (1, 2, 4, 8 ...)."""
    return [first_s * 2**i for i in range(max(0, tries - 1))]


def shown_url(url: str) -> str:
    """A URL as the log and the dashboard show it: no query string or user info (they may
    hold a receiver's token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="seconds")


@dataclass
class _Event:
    url: str
    event: str
    body: bytes


class WebhookSender:
    """Signed, ordered, retried webhook deliveries (see the module's text)."""

    def __init__(
        self,
        secret: str = "",
        tries: int = 5,
        backoff_s: float = 1.0,
        timeout_s: float = 5.0,
        *,
        post: Poster | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.delays = backoff_delays(tries, backoff_s)
        self.timeout_s = timeout_s
        self._post = post or self._http_post
        self._sleep = sleep
        self._clock = clock
        self._queues: dict[str, deque[_Event]] = {}
        self._tasks = TaskSet("webhooks")
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.failures: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._warned_unsigned = False

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def send(self, url: str, key: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` (a JSON object with a ``type``) for ``url``; events of one
        ``key`` go out one after the other, in this order. Never blocks."""
        event = str(payload.get("type", ""))
        if self.pending >= MAX_PENDING:
            self._gave_up(_Event(url, event, b""), f"dropped: {MAX_PENDING} events queued", 0)
            return
        if not self.secret and not self._warned_unsigned:
            self._warned_unsigned = True
            log.warning("webhooks are sent unsigned: set IVRBOT_WEBHOOK_SECRET")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            queue.append(_Event(url, event, body))
            self._tasks.spawn(self._drain(key, queue))
        else:
            queue.append(_Event(url, event, body))

    async def _drain(self, key: str, queue: deque[_Event]) -> None:
        try:
            while queue:
                await self._deliver(queue[0])
                queue.popleft()
        finally:
            if self._queues.get(key) is queue:
                del self._queues[key]

    async def _deliver(self, item: _Event) -> None:
        """Try ``item`` until it is taken, refused, or out of tries."""
        problem, tries = "", 0
        for wait in [*self.delays, None]:
            tries += 1
            at = int(self._clock())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"ivrbot-webhooks/{__version__}",
                EVENT_HEADER: item.event,
                **signed_headers(self.secret, at, item.body),
            }
            try:
                status = await self._post(item.url, item.body, headers, self.timeout_s)
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                problem = _why(exc)
            else:
                if 200 <= status < 300:
                    self.delivered += 1
                    metrics.WEBHOOKS_DELIVERED.labels(item.event).inc()
                    return
                problem = f"HTTP {status}"
                if status < 500:  # refused: trying again would not change its mind
                    break
            if wait is None:
                break
            self.retried += 1
            metrics.WEBHOOK_RETRIES.inc()
            log.info("webhook %s to %s: %s; try %d in %g s", item.event,
                     shown_url(item.url), problem, tries + 1, wait)  # fmt: skip
            await self._sleep(wait)
        self._gave_up(item, problem, tries)

    def _gave_up(self, item: _Event, problem: str, tries: int) -> None:
        self.failed += 1
        metrics.WEBHOOKS_FAILED.labels(item.event).inc()
        url = shown_url(item.url)
        after = f" after {tries} {'try' if tries == 1 else 'tries'}" if tries else ""
        log.warning("webhook %s to %s failed: %s%s", item.event, url, problem, after)
        self.failures.appendleft({"at": _utc(self._clock()), "event": item.event, "url": url,
                                  "problem": problem, "tries": tries})  # fmt: skip

    async def _http_post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float
    ) -> int:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as r:
            await r.read()
            return r.status

    def status(self) -> dict[str, Any]:
        """What the dashboard's webhooks panel shows."""
        return {
            "signed": bool(self.secret),
            "delivered": self.delivered,
            "failed": self.failed,
            "retried": self.retried,
            "pending": self.pending,
            "failures": list(self.failures),
        }

    async def idle(self) -> None:
        """Wait until every queued event is delivered or given up on (tests)."""
        while self._queues:
            await asyncio.sleep(0.02)

    async def close(self, grace_s: float = CLOSE_GRACE_S) -> None:
        """Let queued events go out for up to ``grace_s``, then stop."""
        try:
            await asyncio.wait_for(self.idle(), grace_s)
        except TimeoutError:
            log.warning("webhooks: %d events not sent at shutdown", self.pending)
        self._tasks.cancel_all()
        if self._session is not None:
            await self._session.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
