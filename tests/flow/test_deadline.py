"""A bot's waits with a deadline run on its clock: on a virtual clock a ring-out or an
answering-machine budget passes in no real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from ivrbot.flow.deadline import within
from ivrbot.testing.clock import VirtualClock

pytestmark = pytest.mark.unit


async def test_the_result_when_it_comes_before_the_deadline() -> None:
    clock = VirtualClock()
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    done.set_result("answered")
    assert await within(clock, done, 20.0) == "answered"


async def test_a_deadline_passes_on_the_clock_not_in_real_time() -> None:
    clock = VirtualClock()
    never = asyncio.Event()
    work = asyncio.ensure_future(never.wait())
    began = time.monotonic()
    async with asyncio.timeout(5.0):  # nothing moving the clock: this fails, not hangs
        with pytest.raises(TimeoutError):  # clock.run: time jumps while everything waits
            await clock.run(within(clock, work, 60.0))
    assert clock.monotonic() == 60.0 and time.monotonic() - began < 1.0
    await asyncio.sleep(0)
    assert work.cancelled()  # what was waited for is not left running
