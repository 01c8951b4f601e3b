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

from ivrbot.campaign.campaign import Campaign, Retry, State
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.scheduler import CampaignService, clock_for
from ivrbot.campaign.store import CampaignStore
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.tts import Synthesizer
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token

ROOT = Path(__file__).resolve().parents[2]
CLOCK = "10@2026-03-09T14:00:00+00:00"  # 10x, from Monday 10:00 in New York
CAMPAIGN = Campaign(
    "crash", "reminder", calls_per_minute=1200, max_concurrent=8, ring_timeout_s=5,
    retries={"rejected": Retry(5, 2), "interrupted": Retry(5, 4)},
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
    settings = Settings(port=0, db=str(db.with_suffix(".gw.db")), rate_limit=0,
                        virtual_numbers=["5550001013", *numbers(count)])  # fmt: skip
    server = GatewayServer(settings)
    await server.start()
    async with Synthesizer() as tts:
        bot = Bot(load_flow_file(ROOT / "flows" / "reminder.py"), server.url, tts,
                  gateway=server.gateway, inbound=False, max_calls=10)  # fmt: skip
        await bot.start()
        phones = await asyncio.gather(*(callee(server.url, n) for n in numbers(count)))
        service = CampaignService(store, clock_for(store, CLOCK), lambda _: bot)
        await service.start()
        if store.campaign("crash")[1] is State.CREATED:
            await service.control("crash", "start")
        print("running", flush=True)
        while store.campaign("crash")[1] is not State.FINISHED:
            await asyncio.sleep(0.2)
        print("finished", datetime.now(UTC).isoformat(), flush=True)
        await service.stop()
        for phone in phones:
            await phone.close()
        await bot.stop()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
