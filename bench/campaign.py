"""Campaign dialler: pacing achieved vs configured, CPU per dispatched call, contact import.

Pacing: a campaign at 1, 5 and 10 calls per second places real calls through an in-process
gateway to callees (Phones in this process) that turn each call down at once; achieved
pace = calls between the first and the last dial / seconds between them (goal: within 5 %
of the configured pace). CPU per call: this whole process (gateway, bot, callees, store,
scheduler) per call placed; and the scheduler + store alone per dispatch (the same pace
with no bot for the flow: each claim is settled at once, no call placed).

Import: reading and storing 10,000 contacts from CSV (normalised numbers, zones).

    .venv/bin/python bench/campaign.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn, cast

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ivrbot.campaign.campaign import Campaign, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.scheduler import CampaignService
from ivrbot.campaign.store import CampaignStore
from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.flow import Flow, Hangup
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee

MONDAY_NOON_NEW_YORK = "2026-03-09T16:00:00+00:00"
SECONDS = 8.0  # of dialling per pace (at least 12 calls)


class _NoLine:
    """The bare runs' bot: every dial fails at once (the dispatch cost of the scheduler and
    the store alone)."""

    async def dial(self, number: str) -> NoReturn:
        raise ConnectionError(f"no line to {number}")


_NO_LINE = cast(Bot, _NoLine())


def numbers(count: int) -> list[str]:
    return [f"212555{i:04d}" for i in range(1000, 1000 + count)]


async def run_pace(
    cps: float, with_bot: bool, tts: Synthesizer, folder: Path
) -> tuple[float, float]:
    """(achieved calls per second, CPU ms per call) for one campaign at ``cps``."""
    count = max(12, int(cps * SECONDS))
    db = folder / f"pace-{cps}-{with_bot}-{time.monotonic_ns()}.db"
    settings = Settings(port=0, db=str(db.with_suffix(".gw.db")), rate_limit=0,
                        flow_max_calls=50, virtual_numbers=["5550001013", *numbers(count)])  # fmt: skip
    flow = Flow("bench", number="5550001013")
    flow.add(Hangup("bye"))
    async with assemble(settings, tts=tts) as parts:  # gateway and bot, as ivrbot run
        bot = await parts.serve(flow, inbound=False)
        callees = [Callee(parts.url, "+1" + n, "reject") for n in numbers(count)]
        for callee in callees:
            await callee.login(tts)
        store = CampaignStore(db)
        text = "number\n" + "\n".join("+1" + n for n in numbers(count)) + "\n"
        store.create(Campaign("bench", "bench", calls_per_minute=cps * 60, max_concurrent=50,
                              retries={}), read_contacts(text).contacts)  # fmt: skip
        clock = Clock(1, datetime.fromisoformat(MONDAY_NOON_NEW_YORK))
        service = CampaignService(store, clock, lambda _: bot if with_bot else _NO_LINE)
        await service.start()
        cpu0 = time.process_time()
        await service.control("bench", "start")
        while store.campaign("bench")[1] is not State.FINISHED:
            await asyncio.sleep(0.1)
        cpu = time.process_time() - cpu0
        starts = sorted(float(r["started_at"]) for r in store.attempt_rows("bench"))
        await service.stop()
        for callee in callees:
            await callee.close()
    store.close()
    achieved = (len(starts) - 1) / (starts[-1] - starts[0])
    return achieved, cpu / len(starts) * 1000


def import_10k(folder: Path) -> tuple[float, float]:
    """(seconds to read 10,000 contacts from CSV, seconds to store them)."""
    rows = ["number,name,timezone,appointment"]
    areas = ["212", "312", "310", "415", "617", "713", "305", "206"]
    for i in range(10_000):
        zone = "America/Denver" if i % 10 == 0 else ""
        rows.append(f"+1 {areas[i % len(areas)]} 555 {i % 10000:04d},Person {i},{zone},9am")
    path = folder / "contacts.csv"
    path.write_text("\n".join(rows) + "\n")
    t0 = time.perf_counter()
    result = read_contacts(path)
    t1 = time.perf_counter()
    store = CampaignStore(folder / f"import-{time.monotonic_ns()}.db")
    store.create(Campaign("big", "reminder"), result.contacts)
    t2 = time.perf_counter()
    store.close()
    assert len(result.contacts) + len(result.duplicates) + len(result.errors) == 10_000
    return t1 - t0, t2 - t1


async def main(runs: int) -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the no-bot runs log an error per dispatch
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(
            "| configured calls/s | achieved (median) | error | CPU ms per call, whole process | CPU ms per dispatch, scheduler + store |"
        )
        print("|---:|---:|---:|---:|---:|")
        async with Synthesizer(folder / "prompts") as tts:
            for cps in (1.0, 5.0, 10.0):
                real = [await run_pace(cps, True, tts, folder) for _ in range(runs)]
                bare = [await run_pace(cps, False, tts, folder) for _ in range(runs)]
                achieved = statistics.median(a for a, _ in real)
                print(f"| {cps:g} | {achieved:.2f} | {(achieved / cps - 1) * 100:+.1f} % | "
                      f"{statistics.median(c for _, c in real):.1f} | "
                      f"{statistics.median(c for _, c in bare):.1f} |")  # fmt: skip
        imports = [import_10k(folder) for _ in range(runs)]
        print()
        print("| 10,000 contacts | median s |")
        print("|---|---:|")
        print(f"| read CSV (normalise, zones) | {statistics.median(r for r, _ in imports):.2f} |")
        print(f"| store | {statistics.median(s for _, s in imports):.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main(parser.parse_args().runs))
