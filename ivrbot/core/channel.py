"""The event channel of a session: what the gateway tells the client, in order."""

from __future__ import annotations

import asyncio
from typing import Any


class EventChannel:
    """Queued event objects, read by one WebSocket or by long-polls."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def publish(self, event_object: dict[str, Any]) -> None:
        self._queue.put_nowait(event_object)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def next_batch(self, timeout: float | None) -> list[dict[str, Any]] | None:
        """Every queued event (waiting up to ``timeout`` for the first); None when closed."""
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        if first is None:
            return None
        batch = [first]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                self._queue.put_nowait(None)
                break
            batch.append(item)
        return batch


def envelope(batch: list[dict[str, Any]]) -> dict[str, Any]:
    return {"events": {"eventList": [{"eventObject": e} for e in batch]}}
