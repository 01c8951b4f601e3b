"""A virtual clock for tests: time passes only when the test moves it.

:class:`VirtualClock` is a :class:`~ivrbot.clock.Clock` (time, monotonic, sleep,
call_later, wait_for) on which nothing is due until time moves, in one of two ways:

- ``await clock.advance(s)``: ``s`` seconds pass; every timer and sleep that falls due on
  the way runs in order, each at its own time, and what it wakes runs before the next.
  Tests of the call core move time this way ("the ring timeout ends the call after exactly
  60 s": nothing at 59.9 s, "No answer" at 60 s).
- ``await clock.run(aw)``: runs ``aw`` to its end, jumping to the next timer whenever
  everything else waits (no task is ready to run). The flow test kit runs a call so: a flow's
  ``await call.sleep(2)`` takes 2 s of virtual time and none of real time.

"Everything else waits" is read from the event loop's queue of callbacks ready to run
(CPython's asyncio keeps it in ``loop._ready``); on a loop without one, the clock yields a
fixed number of times instead.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

SETTLE_MAX = 10_000  # yields at most, waiting for the loop to have nothing ready to run
SETTLE_BLIND = 50  # yields on a loop whose ready queue cannot be seen


class VirtualTimer:
    """A callback due at ``when`` on a :class:`VirtualClock` (seconds since its zero)."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when, self.callback = when, callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock whose time moves only by :meth:`advance` or inside :meth:`run`. ``start`` is
    its wall time at zero (the real time now unless given); ``elapsed`` is the time passed."""

    def __init__(self, start: float | None = None) -> None:
        self.start = time.time() if start is None else start
        self.elapsed = 0.0  # seconds passed on this clock
        self._timers: list[tuple[float, int, VirtualTimer]] = []
        self._order = itertools.count()  # timers due at the same time run in the order made
        self._woken: asyncio.Future[None] | None = None  # run() waits here for a new timer

    # reading -------------------------------------------------------------------------------
    def time(self) -> float:
        return self.start + self.elapsed

    def monotonic(self) -> float:
        return self.elapsed

    # waiting -------------------------------------------------------------------------------
    def call_later(self, delay: float, callback: Callable[[], object]) -> VirtualTimer:
        timer = VirtualTimer(self.elapsed + max(0.0, delay), callback)
        heapq.heappush(self._timers, (timer.when, next(self._order), timer))
        if self._woken is not None and not self._woken.done():
            self._woken.set_result(None)
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)  # others may run, as after a real sleep
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not done.done():
                done.set_result(None)

        timer = self.call_later(seconds, wake)
        try:
            await done
        finally:
            timer.cancel()

    async def wait_for(self, aw: Awaitable[T], timeout: float | None) -> T:
        task = asyncio.ensure_future(aw)
        if timeout is None:
            return await task
        expired = False

        def expire() -> None:
            nonlocal expired
            if not task.done():
                expired = True
                task.cancel()

        timer = self.call_later(timeout, expire)
        try:
            return await task
        except asyncio.CancelledError:
            if expired:
                raise TimeoutError from None
            raise
        finally:
            timer.cancel()

    # moving time ---------------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When the next timer is due (seconds since zero), or None when none is."""
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass: what falls due on the way runs in order, each at its time."""
        if seconds < 0:
            raise ValueError(f"a clock does not go back ({seconds} s)")
        target = self.elapsed + seconds
        await settle()
        while (due := self.next_due()) is not None and due <= target:
            self._fire_next()
            await settle()
        self.elapsed = target
        await settle()

    async def run(self, aw: Awaitable[T]) -> T:
        """``aw``'s result, time jumping to the next timer whenever everything else waits
        (with no timer due, it waits for one, or for ``aw`` to end on something real)."""
        task = asyncio.ensure_future(aw)
        loop = asyncio.get_running_loop()
        try:
            while True:
                await settle()
                if task.done():
                    return task.result()
                if self.next_due() is not None:
                    self._fire_next()
                    continue
                self._woken = woken = loop.create_future()
                waits: set[asyncio.Future[Any]] = {task, woken}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                self._woken = None
        finally:
            if not task.done():
                task.cancel()

    def _fire_next(self) -> None:
        when, _, timer = heapq.heappop(self._timers)
        self.elapsed = max(self.elapsed, when)
        timer.callback()


async def settle() -> None:
    """Yield until no other task or callback is ready to run on this event loop."""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    for _ in range(SETTLE_MAX if ready is not None else SETTLE_BLIND):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            return
