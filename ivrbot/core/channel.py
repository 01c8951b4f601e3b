"""The event channel of a session: what the gateway tells the client, in order."""

from __future__ import annotations

import asyncio

from ivrbot.core.events import SessionEvent


class EventChannel:
    """Queued events (ivrbot.core.events), read by one WebSocket, long-polls or an adapter
    (the SIP connector)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[SessionEvent | None] = asyncio.Queue()

    def publish(self, event: SessionEvent) -> None:
        self._queue.put_nowait(event)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def next_batch(self, timeout: float | None) -> list[SessionEvent] | None:
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
