"""Admission: how many calls the bots of this process take at once.

Up to the limits (per flow and for the whole process) every caller is answered at once;
past them a new caller waits in a queue, hearing ringback, until a call ends or the queue
time is up, and then hears busy. Calls in progress are never degraded by new ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class Admission:
    """The process-wide count of admitted calls, and the queue of callers waiting."""

    def __init__(self, max_calls: int = 100) -> None:
        if max_calls < 1:
            raise ValueError(f"max_calls must be 1 or more: {max_calls}")
        self.max_calls = max_calls
        self.active = 0
        self.waiting = 0
        self._changed = asyncio.Condition()

    async def enter(self, room: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until the process and ``room()`` (the flow's own limit) have room, and take
        a place; False when ``timeout_s`` passes first (the caller is turned away)."""

        def free() -> bool:
            return self.active < self.max_calls and room()

        async with self._changed:
            if not free():
                self.waiting += 1
                try:
                    async with asyncio.timeout(timeout_s):
                        await self._changed.wait_for(free)
                except TimeoutError:
                    return False
                finally:
                    self.waiting -= 1
            self.active += 1
            return True

    async def leave(self) -> None:
        """An admitted call is over: the first caller waiting (with room) goes in."""
        async with self._changed:
            self.active = max(0, self.active - 1)
            self._changed.notify_all()
