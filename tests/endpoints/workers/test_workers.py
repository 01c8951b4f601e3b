"""Media worker processes (ivrbot run --workers 2) with real callers on 127.0.0.1: each
call's media and bot on a worker, keys reaching that worker's bot, hold and resume through
the gateway, flows that reach other parties kept in the gateway's process, and a worker
killed mid-call ending only its own calls, with a record, then starting again."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrbot.config import Settings
from ivrbot.endpoints.workers.pool import WorkerPool
from ivrbot.serve import Runner
from ivrbot.speech.tts import Synthesizer
from ivrbot.store.nodes import this_node
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller
from ivrbot.web.board import BOARD

pytestmark = [pytest.mark.e2e, pytest.mark.serial]  # greeting lengths heard through workers: alone
FLOWS = Path(__file__).parent / "flows"
DESK, FRONT = "5550002100", "5550002101"


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runner]:
    """``ivrbot run tests/endpoints/workers/flows --workers 2``, in this process."""
    tmp = tmp_path_factory.mktemp("workers")
    settings = Settings(port=0, db=str(tmp / "ivrbot.db"), recordings=tmp / "rec", media_workers=2)
    runner = Runner(FLOWS, settings)
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()


def pool(runner: Runner) -> WorkerPool:
    assert runner.workers is not None
    return runner.workers


async def records_of(runner: Runner, callers: set[str], timeout_s: float = 20.0) -> dict[str, Any]:
    """The finished flow records of these callers (by caller user), as the workers stored
    them in the shared database."""
    store = runner.server.gateway.store
    deadline = time.monotonic() + timeout_s
    while True:
        found = {r["caller"].split("@")[0]: r for r in await store.flow_calls(200)}
        done = {c: found[c] for c in callers if c in found and found[c]["outcome"] != "in-progress"}
        if len(done) == len(callers) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.2)


async def until(rows: Callable[[], list[Any]], count: int, timeout_s: float = 10.0) -> list[Any]:
    """``rows()`` once it has ``count`` rows (what it has after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while len(found := rows()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return found


def pid_of(record: dict[str, Any]) -> int:
    return int(record["node"].split(":")[1])


async def caller(runner: Runner, tts: Synthesizer, user: str) -> SimulatedCaller:
    person = SimulatedCaller(runner.server.url, tts, user=user)
    await person.dial(DESK)
    return person


async def test_each_call_runs_on_a_worker_whose_bot_gets_its_keys(
    served: Runner, tts: Synthesizer
) -> None:
    ann, ben = await asyncio.gather(caller(served, tts, "ann"), caller(served, tts, "ben"))
    try:
        greetings = await asyncio.gather(ann.hear_prompt(), ben.hear_prompt())
        assert all(seconds > 1.5 for seconds in greetings)  # "Press one for the time, ..."
        # the gateway relays the calls: no media leg and no bridge of its own
        assert served.server.gateway.switch.calls == {}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{served.server.url}/health") as response:
                health = await response.json()
            async with http.get(f"{served.server.url}/metrics") as response:
                metrics = await response.text()
        assert health["calls_in_progress"] == 2
        assert sorted(w["calls"] for w in health["workers"]) == [1, 1]
        assert 'ivrbot_worker_calls{worker="0"} 1.0' in metrics
        assert 'ivrbot_worker_calls{worker="1"} 1.0' in metrics
        # each worker's own metrics, labelled: its call in progress, its CPU
        assert 'ivrbot_calls_in_progress{worker="0"} 1.0' in metrics
        assert 'ivrbot_calls_in_progress{worker="1"} 1.0' in metrics
        assert 'process_cpu_seconds_total{worker="1"}' in metrics
        board = served.server.app[BOARD]  # the operator's dashboard: both calls, live
        rows = await until(lambda: [r for r in board.live_calls() if r["flow"] == "desk"], 2)
        assert sorted(r["worker"] for r in rows) == [0, 1]
        assert {r["step"] for r in rows} == {"menu"}
        await ann.press("1")
        await ben.press("2")
        answers = await asyncio.gather(ann.hear_prompt(), ben.hear_prompt())
        assert all(seconds > 0.8 for seconds in answers)
        await ann.hangup()
        await ben.hangup()
    finally:
        await ann.close()
        await ben.close()
    records = await records_of(served, {"ann", "ben"})
    assert records["ann"]["inputs"][0]["value"] == "1"
    assert records["ann"]["path"][:2] == ["menu", "time"]
    assert records["ben"]["inputs"][0]["value"] == "2"
    assert records["ben"]["path"][:2] == ["menu", "weather"]
    workers = {w.pid for w in pool(served).workers}
    ran_on = {pid_of(records["ann"]), pid_of(records["ben"])}
    assert ran_on == workers  # one call on each worker, none in this process
    assert os.getpid() not in ran_on


async def test_hold_and_resume_reach_the_worker(served: Runner, tts: Synthesizer) -> None:
    cal = await caller(served, tts, "cal")
    try:
        await cal.ear.speech()  # the greeting starts
        await cal.phone.hold()  # answered (mod-terminated) by the worker's switch
        held_at = time.monotonic()
        await asyncio.sleep(1.5)
        heard = cal.ear.level_between(held_at + 0.3, time.monotonic())
        assert not any(db > SPEECH_DB for db in heard)  # the bot's prompt no longer reaches
        await cal.phone.resume()
        await cal.press("1")
        started = time.monotonic()
        assert await cal.ear.speech() > started  # "It is twelve o'clock."
        await cal.hangup()
    finally:
        await cal.close()
    record = (await records_of(served, {"cal"}))["cal"]
    assert "time" in record["path"] and pid_of(record) != os.getpid()


async def test_a_flow_that_transfers_runs_in_the_gateway(served: Runner, tts: Synthesizer) -> None:
    assert all(f"vtn:{FRONT}" not in w.serves for w in pool(served).workers)
    assert all(f"vtn:{DESK}" in w.serves for w in pool(served).workers)
    dee = SimulatedCaller(served.server.url, tts, user="dee")
    try:
        await dee.dial(FRONT)
        await dee.ear.speech()  # "Hello, connecting you.", music, "Nobody is free ..."
        await asyncio.wait_for(dee.disconnected.wait(), 30)  # the flow ends
    finally:
        await dee.close()
    record = (await records_of(served, {"dee"}))["dee"]
    assert record["node"] == this_node()  # the bot of this process answered
    assert record["transfers"] and "sorry" in record["path"]


async def test_a_killed_worker_ends_only_its_calls_and_starts_again(
    served: Runner, tts: Synthesizer
) -> None:
    eve, fay = await asyncio.gather(caller(served, tts, "eve"), caller(served, tts, "fay"))
    try:
        await asyncio.gather(eve.hear_prompt(), fay.hear_prompt())
        eves = next(w for w in pool(served).workers if w.legs and
                    next(iter(w.legs.values())).session.user_id.startswith("eve"))  # fmt: skip
        old_pid = eves.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        await asyncio.wait_for(eve.disconnected.wait(), 10)
        assert eve.call is not None and eve.call.end_reason == "Media failed"
        # fay's call, on the other worker, goes on: her key reaches its bot, she hears it
        await fay.press("2")
        pressed = time.monotonic()
        assert await fay.ear.speech() > pressed
        await fay.hangup()
    finally:
        await eve.close()
        await fay.close()
    records = await records_of(served, {"eve", "fay"})
    assert records["eve"]["outcome"] == "interrupted"
    assert "media worker" in records["eve"]["error"]
    assert records["fay"]["path"][:2] == ["menu", "weather"]
    calls = await served.server.gateway.store.recent_calls(50)
    assert any(c.from_uri.startswith("sip:eve@") and c.reason == "interrupted" for c in calls)
    # the worker starts again, and takes calls
    await asyncio.wait_for(eves.ready.wait(), 60)
    assert eves.pid != old_pid and eves.alive and eves.status()["starts"] == 2
    gus = await caller(served, tts, "gus")
    try:
        assert await gus.hear_prompt() > 1.5
        await gus.hangup()
    finally:
        await gus.close()
