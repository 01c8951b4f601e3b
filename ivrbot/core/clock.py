"""The flow's clock: what a call reads the time from and waits on.

A :class:`FlowCall` takes one (``FlowCall(..., clock=...)``); the default is the real one.
The test kit (:mod:`ivrbot.testing.flowtest`) gives a call a virtual clock instead, so a
flow's pauses (``await call.sleep(2)``) and its questions' timeouts pass in no real time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Time for a flow: the wall clock, a monotonic clock, and sleeping on it."""

    def time(self) -> float:
        """Seconds since the epoch (what a record's ``started_at`` / ``ended_at`` hold)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines and durations)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class RealClock:
    """The real clock: ``time.time()``, ``time.monotonic()``, ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


REAL_CLOCK = RealClock()
