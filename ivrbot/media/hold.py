"""A call on hold, as a bot's listening sees it: who holds it now, and waits that do not count
the time it is held.

A bot's call is held when the bot's side holds it (its Phone's ``call:held``) or when the far
end holds (``call:remote-held``: the caller holds, or the gateway holds the caller's leg, as a
SIP phone's re-INVITE ``a=sendonly`` does). While held the bot hears nothing (the gateway sends
a bot silence, and its :class:`~ivrbot.media.listener.Listener` ignores what arrives), so time
on hold is not the caller's time to answer: :meth:`HoldState.sleep` and
:meth:`HoldState.wait_for` count only time off hold. Their bookkeeping is
:class:`HeldTimer` (pure: times in, remaining time out), so it is tested without a clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from ivrbot.clock import REAL_CLOCK, Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

# A session says at login what the gateway sends it while the far end holds (ivrbot's own
# header on POST /RTC/v1/sessions); one that says is told of the far end's hold and resume
# (session-modified, reason 'held' / 'resumed'). Bots say 'silence'.
HOLD_AUDIO_HEADER = "x-ivrbot-hold-audio"
HOLD_AUDIO = ("music", "silence")

BOT_SIDE = "bot"  # the bot's own side holds the call (its Phone's hold, or add_call)
FAR_END = "far end"  # the other party holds (or the gateway holds its leg)


class HeldTimer:
    """A timeout of ``seconds`` that does not run while the call is held.

    Every method takes the time now (any monotonic clock, in seconds); nothing here reads a
    clock or sleeps."""

    def __init__(self, seconds: float, now: float, held: bool = False) -> None:
        self.seconds = seconds
        self._spent = 0.0  # time off hold counted before the current run
        self._running_since: float | None = None if held else now

    @property
    def paused(self) -> bool:
        return self._running_since is None

    def hold(self, now: float) -> None:
        if self._running_since is not None:
            self._spent += max(0.0, now - self._running_since)
            self._running_since = None

    def resume(self, now: float) -> None:
        if self._running_since is None:
            self._running_since = now

    def remaining(self, now: float) -> float:
        """Time off hold still to run (0: it has run out)."""
        spent = self._spent
        if self._running_since is not None:
            spent += max(0.0, now - self._running_since)
        return max(0.0, self.seconds - spent)


class HoldState:
    """Who holds a call now (a set of :data:`BOT_SIDE` / :data:`FAR_END`), with waits that
    pause while it is held (on ``clock``)."""

    def __init__(self, name: str = "call", clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.clock = clock
        self._by: set[str] = set()
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def held(self) -> bool:
        return bool(self._by)

    @property
    def held_by(self) -> frozenset[str]:
        return frozenset(self._by)

    def set(self, by: str, held: bool) -> None:
        """``by`` holds the call (``held``) or has resumed it; waits are told of a change
        between held and not held."""
        was = self.held
        if held:
            self._by.add(by)
        else:
            self._by.discard(by)
        if self.held != was:
            log.debug("%s: %s (%s)", self.name, "held" if self.held else "resumed", by)
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        """The call has ended: nobody holds it any more."""
        for by in list(self._by):
            self.set(by, False)

    async def changed(self) -> None:
        """Wait for the next change between held and not held."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of time off hold (time on hold does not count)."""
        clock = self.clock
        timer = HeldTimer(seconds, clock.monotonic(), self.held)
        while (left := timer.remaining(clock.monotonic())) > 0:
            if timer.paused:
                await self.changed()
            else:
                try:
                    await clock.wait_for(self.changed(), left)
                except TimeoutError:
                    continue  # remaining() is 0 now (or a hair above: loop again)
            if self.held:
                timer.hold(clock.monotonic())
            else:
                timer.resume(clock.monotonic())

    async def wait_for(self, aw: Awaitable[T], seconds: float) -> T:
        """As :func:`asyncio.wait_for`, but ``seconds`` only count time off hold."""
        task = asyncio.ensure_future(aw)
        timer = asyncio.ensure_future(self.sleep(seconds))
        try:
            await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                return task.result()
            raise TimeoutError
        finally:
            pending = {t for t in (task, timer) if not t.done()}
            for waiting in pending:
                waiting.cancel()
            if pending:  # gone before this returns (a key taken now is not lost later)
                await asyncio.wait(pending)
