"""The clock: what the call core, the media pacer, flows and campaigns read the time from and
wait on.

One clock is made by the composition root (:data:`REAL_CLOCK`, the real one) and passed to
every part that keeps time: the switch (ring timeout, media timeout, call records' times),
conferences, sessions' expiry, the pacer of outbound audio, the mixer, a flow's call, the
campaign clock. Tests pass a virtual one instead (:class:`ivrbot.testing.clock.VirtualClock`),
so a 60 s ring timeout or a flow's 2 s pause passes in no real time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

T = TypeVar("T")


class Timer(Protocol):
    """A callback due later (:meth:`Clock.call_later`); cancel it to drop it."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time: the wall clock, a monotonic clock, sleeping, timers and timeouts on it."""

    def time(self) -> float:
        """Seconds since the epoch (what a record's ``started_at`` / ``ended_at`` hold)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines, durations, pacing)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback`` (on the event loop) once ``delay`` seconds have passed."""
        ...

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        """``aw``'s result, or TimeoutError (``aw`` cancelled) once ``timeout`` seconds
        have passed on this clock first (None: no timeout)."""
        ...


class RealClock:
    """The real clock: ``time.time()``, ``time.monotonic()``, the event loop's timers."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        return await asyncio.wait_for(aw, timeout)


REAL_CLOCK = RealClock()
