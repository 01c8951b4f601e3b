"""A virtual clock for flows under test: time passes only when the flow waits on it."""

from __future__ import annotations

import asyncio
import time


class VirtualClock:
    """A :class:`~ivrbot.core.clock.Clock` whose time moves only when asked: ``sleep(s)``
    and ``advance(s)`` add ``s`` seconds at once. ``start`` is its wall time at zero (the
    real time now unless given)."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self.elapsed = 0.0  # seconds passed on this clock

    def time(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        self.elapsed += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # others may run, as after a real sleep
