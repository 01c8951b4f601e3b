"""A campaign run in a process of its own, to be killed (SIGKILL) and started again.

``python -m tests.campaign.crash_driver DB CONTACTS``: a gateway, the reminder flow's bot
and CONTACTS callees in this process (each turns the call down after ringing 0.2-0.6 s),
and the campaign service on DB. Creates the campaign on the first run; prints 'finished'
and exits once the campaign is finished.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivrbot.campaign.campaign import Campaign, RetryPolicy, State
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.store import CampaignStore
from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token

ROOT = Path(__file__).resolve().parents[2]
CLOCK = "10@2026-03-09T14:00:00+00:00"  # 10x, from Monday 10:00 in New York
CAMPAIGN = Campaign(
    "crash", "reminder", calls_per_minute=1200, max_concurrent=8, ring_timeout_s=5,
    retries={"busy": RetryPolicy(5, 2), "interrupted": RetryPolicy(5, 4)},
)  # fmt: skip


def numbers(count: int) -> list[str]:
    return [f"212555{i:04d}" for i in range(1000, 1000 + count)]


async def callee(url: str, number: str) -> Phone:
    phone = Phone(url, name=f"callee {number}")

    async def ring(_: Any) -> None:
        await asyncio.sleep(random.uniform(0.2, 0.6))
        await phone.reject()

    phone.on("call:incoming", ring)
    await phone.login(token=await fetch_token(url, "VIRTUAL_NUMBER"), user_id=f"vtn:{number}")
    return phone


async def main(db: Path, count: int) -> None:
    store = CampaignStore(db)
    if "crash" not in store.names():
        text = "number\n" + "\n".join("+1" + n for n in numbers(count)) + "\n"
        store.create(CAMPAIGN, read_contacts(text).contacts)
    # as ivrbot run: the gateway's records and the campaigns in one database file
    settings = Settings(port=0, db=str(db), rate_limit=0, campaign_clock=CLOCK,
                        flow_max_calls=10, virtual_numbers=["5550001013", *numbers(count)])  # fmt: skip
    async with assemble(settings, campaigns=True) as parts:
        await parts.serve(load_flow_file(ROOT / "flows" / "reminder.py"), inbound=False)
        phones = await asyncio.gather(*(callee(parts.url, n) for n in numbers(count)))
        await parts.start_campaigns()
        assert parts.campaigns is not None
        if store.campaign("crash")[1] is State.CREATED:
            await parts.campaigns.control("crash", "start")
        print("running", flush=True)
        while store.campaign("crash")[1] is not State.FINISHED:
            await asyncio.sleep(0.2)
        print("finished", datetime.now(UTC).isoformat(), flush=True)
        for phone in phones:
            await phone.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
