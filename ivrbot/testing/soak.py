"""Soak: many short calls in a row through a real gateway and a real bot, measuring what the
process holds after each batch (resident memory, OS threads, descriptors, asyncio tasks, live
peer connections).

Used by the slow soak test and by ``bench/soak.py``. Each call: a caller Phone logs in,
dials the soak flow, hears its greeting, presses a key (RFC 4733), hears the bot's reply
begin and hangs up, then logs out; the bot answers over its own Phone. That is four aiortc
peer connections, two gateway legs and a bridge, a grammar recogniser turn (with a model)
and two prompts per call.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import vosk
from aiortc import RTCPeerConnection

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import Flow
from ivrbot.flow.runner import Bot
from ivrbot.flow.steps import Ask, Python, Retry, Say
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SimulatedCaller

SOAK_NUMBER = "5550001099"
HOLD_S = 30.0  # the soak flow's last step waits this long for the caller to hang up
CALL_TIMEOUT_S = 20.0
GRACE_S = 0.2  # samples are taken this long after the last call was let go (closing tasks end)


def soak_flow() -> Flow:
    """A short flow: a greeting that takes one key (or the word 메뉴), a short reply, then it
    waits for the caller to hang up (so the caller, not a race, ends every call)."""
    flow = Flow("soak", number=SOAK_NUMBER, description="soak", language="ko", rate=260,
                retry=Retry(attempts=1))  # a miss goes on to 'thanks' at once  # fmt: skip
    flow.add(
        Ask(
            "menu",
            "Hi.",
            choices={"메뉴": "menu"},
            next="thanks",
            no_input="thanks",
            no_match="thanks",
        ),
        Say("thanks", "OK.", next="hold"),
        Python("hold", _hold),
    )
    return flow


async def _hold(call: FlowCall) -> str | None:
    await asyncio.sleep(HOLD_S)
    return None


@dataclass(frozen=True)
class Sample:
    calls: int  # calls finished so far
    keys_taken: int  # of those, calls whose record has the key the caller pressed
    rss_mb: float
    threads: int  # OS threads of the process (native codec threads included)
    fds: int
    tasks: int  # asyncio tasks not yet done
    peers: int  # RTCPeerConnection objects still alive
    elapsed_s: float


def _proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


async def sample(calls: int, keys_taken: int, started: float) -> Sample:
    """The process ``GRACE_S`` from now. Collects garbage first: what survives a collection is
    what is held (reference cycles inside aiortc wait for the collector; their threads,
    sockets and resamplers are released explicitly when a call ends, without a collection)."""
    await asyncio.sleep(GRACE_S)
    gc.collect()
    return Sample(
        calls=calls,
        keys_taken=keys_taken,
        rss_mb=_proc_status("VmRSS") / 1024,
        threads=_proc_status("Threads"),
        fds=len(os.listdir("/proc/self/fd")),
        tasks=sum(1 for t in asyncio.all_tasks() if not t.done()),
        peers=sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection)),
        elapsed_s=time.monotonic() - started,
    )


async def one_call(gateway_url: str, tts: Synthesizer, digit: str, user: str) -> None:
    """One call of the soak: dial, hear the greeting, press ``digit``, hear the reply begin
    (the bot took the key), hang up, log out."""
    caller = SimulatedCaller(gateway_url, tts, user=user)
    try:
        async with asyncio.timeout(CALL_TIMEOUT_S):
            await caller.dial(SOAK_NUMBER)
            await caller.hear_prompt(silence_s=0.2)
            await caller.press(digit)
            await caller.ear.speech()
            await caller.hangup()
            await caller.disconnected.wait()
    finally:
        await caller.close()


async def _settled(parts: Parts, bot: Bot, calls: int) -> None:
    """Wait until the bot has the record of call number ``calls`` and neither it nor the
    gateway holds a call."""
    async with asyncio.timeout(CALL_TIMEOUT_S):
        while bot.ended_count < calls or parts.gateway.switch.calls or bot.active:
            await asyncio.sleep(0.02)


async def soak(
    calls: int, every: int, tts: Synthesizer, model: vosk.Model | None, db: str
) -> AsyncIterator[Sample]:
    """Run ``calls`` calls one after another through a new gateway (call records in the
    SQLite file ``db``) and bot; a :class:`Sample` before the first call and after every
    ``every`` calls, each taken once the bot and the gateway have let the last call go.
    (``model``: loaded by the caller, so that its memory is in the first sample.)"""
    taken = 0
    async with assemble(Settings(port=0, db=db), tts=tts) as parts:
        bot = await parts.serve(soak_flow())  # attached inside the gateway, as ivrbot run
        started = time.monotonic()
        yield await sample(0, taken, started)
        for index in range(1, calls + 1):
            digit = str(index % 10)
            await one_call(parts.url, tts, digit, user=f"soak{index % 3}")
            await _settled(parts, bot, index)
            taken += bot.records[-1].digits == digit  # the bot keeps its latest records
            if index % every == 0 or index == calls:
                yield await sample(index, taken, started)


def per_call(samples: list[Sample], warm_up: int) -> dict[str, float]:
    """Growth per call from the first sample at or after ``warm_up`` calls to the last."""
    base = next(s for s in samples if s.calls >= warm_up)
    last = samples[-1]
    n = max(1, last.calls - base.calls)
    return {
        "rss_mb": (last.rss_mb - base.rss_mb) / n,
        "threads": (last.threads - base.threads) / n,
        "fds": (last.fds - base.fds) / n,
        "tasks": (last.tasks - base.tasks) / n,
        "peers": (last.peers - base.peers) / n,
    }
