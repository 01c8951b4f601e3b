"""How a Phone tells its application: subscriptions (``on``), publishing typed payloads
(ivrbot.events), and failing a method the spec's way (the ``error`` event, then
:class:`~ivrbot.errors.PhoneException`; docs/spec/phone-api.md, "Error model")."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from ivrbot.errors import PhoneError, PhoneException
from ivrbot.events import PAYLOADS, Event, Payload
from ivrbot.phone.transport import Response

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None] | None]


class Publisher:
    """The Phone's subscriptions and the tasks its async handlers run in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: dict[Event, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, handler: Handler) -> None:
        """Subscribe ``handler`` (sync or async) to an event named as in the spec."""
        if not isinstance(event, str) or not callable(handler):
            self.fail("on", "4901", "on() takes an event name and a callable")
        try:
            name = Event(event)
        except ValueError:
            self.fail("on", "4902", f"unknown event name {event!r}")
        self._handlers.setdefault(name, []).append(handler)

    def publish(self, event: Event, payload: Payload | PhoneError | None = None) -> None:
        """Hand ``payload`` (the type :data:`ivrbot.events.PAYLOADS` names for ``event``)
        to every handler; an async handler runs as a task of its own."""
        expected = PAYLOADS[event]
        if (payload is None) != (expected is None) or (
            expected is not None and type(payload) is not expected
        ):
            raise TypeError(f"{event} carries {expected}, not {type(payload).__name__}")
        for handler in list(self._handlers.get(event, [])):
            try:
                result = handler(payload)
            except Exception:
                log.exception("%s: handler for %s failed", self.name, event)
                continue
            if inspect.isawaitable(result):
                self.spawn(self._guard(event, result))

    async def _guard(self, event: Event, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("%s: handler for %s failed", self.name, event)

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as one of the Phone's tasks (cancelled by :meth:`cancel_all`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def fail(
        self,
        method: str,
        code: str,
        message: str,
        resp: Response | None = None,
        publish: bool = True,
    ) -> NoReturn:
        """Fail ``method`` with ``code``: the ``error`` event (unless another event tells
        the application instead), then PhoneException."""
        error = PhoneError(
            error_code=code,
            js_method=method,
            error_message=message,
            http_status_code=resp.status if resp else None,
            message_id=(resp.message_id or "") if resp else "",
            api_error=resp.text if resp else "",
        )
        if publish:
            self.publish(Event.ERROR, error)
        raise PhoneException(error)
