"""Waiting for something on a flow's clock, up to a deadline (a bot's ring and detection
timeouts: on the real clock by default, on a virtual one in tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ivrbot.clock import Clock

T = TypeVar("T")


async def within(clock: Clock, awaitable: Awaitable[T], seconds: float) -> T:
    """``awaitable``'s result, or TimeoutError once ``seconds`` have passed on ``clock`` (it
    is cancelled then)."""
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        work.cancel()
        raise
    finally:
        timer.cancel()
    if not work.done():
        work.cancel()
        raise TimeoutError
    return work.result()
