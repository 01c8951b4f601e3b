"""Input timers that pause while a call is held (ivrbot.media.hold): the bookkeeping on plain
numbers, the waits on an event loop whose clock jumps from timer to timer (virtual time: a
60 s scenario runs in milliseconds, and every time asserted is exact)."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import av
import numpy as np
import pytest

from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.hold import BOT_SIDE, FAR_END, HeldTimer, HoldState
from ivrbot.media.listener import Listener
from ivrbot.testing.audio import sine

pytestmark = pytest.mark.unit

T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Instead of waiting ``timeout`` seconds for I/O, move the loop's clock on by it."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("deadlock: nothing is scheduled and nothing can happen")
        self.loop.now += max(0.0, timeout)
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: ``time()`` only moves when the loop would sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def at(when: float, action: Callable[[], object]) -> None:
    """Do ``action`` at virtual time ``when``."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(when - loop.time())
    action()


def later(when: float, action: Callable[[], object]) -> asyncio.Task[None]:
    return asyncio.ensure_future(at(when, action))


async def finished_at(aw: Awaitable[object]) -> float:
    await aw
    return asyncio.get_running_loop().time()


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
    async def main() -> float:
        return await finished_at(HoldState().sleep(3.0))

    assert run(main) == 3.0


def test_a_no_input_timeout_resumes_after_the_hold() -> None:
    """3 s to answer; after 1 s the caller holds for 4 s: the time runs out at 3 + 4 = 7 s."""

    async def main() -> float:
        hold = HoldState()
        later(1.0, lambda: hold.set(FAR_END, True))
        later(5.0, lambda: hold.set(FAR_END, False))
        return await finished_at(hold.sleep(3.0))

    assert run(main) == 7.0


def test_held_twice_and_held_from_the_start() -> None:
    async def main() -> float:
        hold = HoldState()
        hold.set(FAR_END, True)  # already held when the timer starts: it waits
        later(2.0, lambda: hold.set(FAR_END, False))  # runs 2 -> 3
        later(3.0, lambda: hold.set(FAR_END, True))
        later(10.0, lambda: hold.set(FAR_END, False))  # runs 10 -> 12
        return await finished_at(hold.sleep(3.0))

    assert run(main) == 12.0


def test_both_sides_hold_and_one_resumes_the_call_stays_held() -> None:
    async def main() -> float:
        hold = HoldState()
        later(1.0, lambda: hold.set(FAR_END, True))
        later(2.0, lambda: hold.set(BOT_SIDE, True))
        later(3.0, lambda: hold.set(FAR_END, False))  # the bot's side still holds
        later(6.0, lambda: hold.set(BOT_SIDE, False))
        return await finished_at(hold.sleep(3.0))

    assert run(main) == 8.0  # 1 s before the hold, 2 s after 6


def test_an_inter_digit_wait_takes_the_key_pressed_after_the_hold() -> None:
    """3 s between digits; held from 1 s to 6 s; the next key at 7 s is taken."""

    async def main() -> tuple[str, float]:
        hold = HoldState()
        keys: asyncio.Queue[str] = asyncio.Queue()
        later(1.0, lambda: hold.set(FAR_END, True))
        later(6.0, lambda: hold.set(FAR_END, False))
        later(7.0, lambda: keys.put_nowait("5"))
        key = await hold.wait_for(keys.get(), 3.0)
        return key, asyncio.get_running_loop().time()

    assert run(main) == ("5", 7.0)


def test_an_inter_digit_wait_still_times_out() -> None:
    async def main() -> float:
        hold = HoldState()
        keys: asyncio.Queue[str] = asyncio.Queue()
        later(1.0, lambda: hold.set(FAR_END, True))
        later(6.0, lambda: hold.set(FAR_END, False))
        with pytest.raises(TimeoutError):
            await hold.wait_for(keys.get(), 3.0)
        assert keys.empty() and not hold.held
        return asyncio.get_running_loop().time()

    assert run(main) == 8.0


def test_a_call_that_ends_on_hold_frees_its_waits() -> None:
    async def main() -> float:
        hold = HoldState()
        hold.set(FAR_END, True)
        later(4.0, hold.clear)  # the listener closes: nobody holds a call that is gone
        return await finished_at(hold.sleep(1.0))

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
