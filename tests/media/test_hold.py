"""Input timers that pause while a call is held (ivrbot.media.hold): the bookkeeping on plain
numbers, the waits on a virtual clock that jumps from timer to timer (ivrbot.testing.clock: a
60 s scenario runs in milliseconds, and every time asserted is exact)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import av
import numpy as np
import pytest

from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.hold import BOT_SIDE, FAR_END, HeldTimer, HoldState
from ivrbot.media.listener import Listener
from ivrbot.testing.audio import sine
from ivrbot.testing.clock import VirtualClock

pytestmark = pytest.mark.unit

T = TypeVar("T")


def run(main: Callable[[VirtualClock], Coroutine[Any, Any, T]]) -> T:
    """``main(clock)`` on a virtual clock that jumps from timer to timer."""

    async def on_virtual_time() -> T:
        clock = VirtualClock(0.0)
        return await clock.run(main(clock))

    return asyncio.run(on_virtual_time())


def later(clock: VirtualClock, when: float, action: Callable[[], object]) -> None:
    """Do ``action`` at virtual time ``when``."""
    clock.call_later(when - clock.monotonic(), action)


async def finished_at(clock: VirtualClock, aw: Awaitable[object]) -> float:
    await aw
    return clock.monotonic()


# the bookkeeping ------------------------------------------------------------------------------
def test_a_timer_counts_only_time_off_hold() -> None:
    timer = HeldTimer(3.0, now=10.0)
    assert timer.remaining(11.0) == 2.0
    timer.hold(11.0)
    assert timer.paused and timer.remaining(50.0) == 2.0  # held 39 s: nothing spent
    timer.resume(50.0)
    assert timer.remaining(51.5) == 0.5
    assert timer.remaining(60.0) == 0.0


def test_a_timer_made_on_hold_waits_for_the_resume() -> None:
    timer = HeldTimer(3.0, now=0.0, held=True)
    assert timer.remaining(100.0) == 3.0
    timer.resume(100.0)
    timer.resume(101.0)  # twice: the first counts
    assert timer.remaining(102.0) == 1.0
    timer.hold(102.0)
    timer.hold(103.0)
    assert timer.remaining(200.0) == 1.0


# waits on virtual time --------------------------------------------------------------------------
def test_sleep_without_hold_is_a_sleep() -> None:
    async def main(clock: VirtualClock) -> float:
        return await finished_at(clock, HoldState(clock=clock).sleep(3.0))

    assert run(main) == 3.0


def test_a_no_input_timeout_resumes_after_the_hold() -> None:
    """3 s to answer; after 1 s the caller holds for 4 s: the time runs out at 3 + 4 = 7 s."""

    async def main(clock: VirtualClock) -> float:
        hold = HoldState(clock=clock)
        later(clock, 1.0, lambda: hold.set(FAR_END, True))
        later(clock, 5.0, lambda: hold.set(FAR_END, False))
        return await finished_at(clock, hold.sleep(3.0))

    assert run(main) == 7.0


def test_held_twice_and_held_from_the_start() -> None:
    async def main(clock: VirtualClock) -> float:
        hold = HoldState(clock=clock)
        hold.set(FAR_END, True)  # already held when the timer starts: it waits
        later(clock, 2.0, lambda: hold.set(FAR_END, False))  # runs 2 -> 3
        later(clock, 3.0, lambda: hold.set(FAR_END, True))
        later(clock, 10.0, lambda: hold.set(FAR_END, False))  # runs 10 -> 12
        return await finished_at(clock, hold.sleep(3.0))

    assert run(main) == 12.0


def test_both_sides_hold_and_one_resumes_the_call_stays_held() -> None:
    async def main(clock: VirtualClock) -> float:
        hold = HoldState(clock=clock)
        later(clock, 1.0, lambda: hold.set(FAR_END, True))
        later(clock, 2.0, lambda: hold.set(BOT_SIDE, True))
        later(clock, 3.0, lambda: hold.set(FAR_END, False))  # the bot's side still holds
        later(clock, 6.0, lambda: hold.set(BOT_SIDE, False))
        return await finished_at(clock, hold.sleep(3.0))

    assert run(main) == 8.0  # 1 s before the hold, 2 s after 6


def test_an_inter_digit_wait_takes_the_key_pressed_after_the_hold() -> None:
    """3 s between digits; held from 1 s to 6 s; the next key at 7 s is taken."""

    async def main(clock: VirtualClock) -> tuple[str, float]:
        hold = HoldState(clock=clock)
        keys: asyncio.Queue[str] = asyncio.Queue()
        later(clock, 1.0, lambda: hold.set(FAR_END, True))
        later(clock, 6.0, lambda: hold.set(FAR_END, False))
        later(clock, 7.0, lambda: keys.put_nowait("5"))
        key = await hold.wait_for(keys.get(), 3.0)
        return key, clock.monotonic()

    assert run(main) == ("5", 7.0)


def test_an_inter_digit_wait_still_times_out() -> None:
    async def main(clock: VirtualClock) -> float:
        hold = HoldState(clock=clock)
        keys: asyncio.Queue[str] = asyncio.Queue()
        later(clock, 1.0, lambda: hold.set(FAR_END, True))
        later(clock, 6.0, lambda: hold.set(FAR_END, False))
        with pytest.raises(TimeoutError):
            await hold.wait_for(keys.get(), 3.0)
        assert keys.empty() and not hold.held
        return clock.monotonic()

    assert run(main) == 8.0


def test_a_call_that_ends_on_hold_frees_its_waits() -> None:
    async def main(clock: VirtualClock) -> float:
        hold = HoldState(clock=clock)
        hold.set(FAR_END, True)
        later(clock, 4.0, hold.clear)  # the listener closes: nobody holds a call that is gone
        return await finished_at(clock, hold.sleep(1.0))

    assert run(main) == 5.0


# the listener: what it hears while held ------------------------------------------------------
def _frames(pcm: np.ndarray) -> list[av.AudioFrame]:
    out = []
    for start in range(0, pcm.size - 959, 960):
        frame = av.AudioFrame.from_ndarray(
            pcm[start : start + 960].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = WIRE_RATE
        out.append(frame)
    return out


async def test_a_held_listener_takes_no_key_and_queues_no_speech() -> None:
    """In-band key tones and loud audio that arrive on hold reach neither the key detector
    nor the speech queue nor a tap; after the resume they do again."""
    from ivrbot.media.dtmf import tones

    listener = Listener()
    listener.listening_for_speech = True
    tapped: list[float] = []
    listener.taps.append(lambda pcm: tapped.append(float(np.abs(pcm).max(initial=0))))
    loud = np.concatenate([tones("5", WIRE_RATE, duration_ms=120), sine(440, 0.3)])
    listener.hold.set(FAR_END, True)
    for frame in _frames(loud):
        listener.on_frame(frame)
    assert listener.presses.empty() and listener.speech.empty() and not tapped
    listener.hold.set(FAR_END, False)
    for frame in _frames(loud):
        listener.on_frame(frame)
    assert listener.presses.get_nowait() == ("5", "inband")
    assert not listener.speech.empty() and max(tapped) > 1000
    listener.close()
