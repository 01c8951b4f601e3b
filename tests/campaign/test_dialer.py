"""The dialler's own rules, on a real store, with no call placed: concurrency, the abandon
ratio, do-not-call at dial time, contacts claimed once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, cast

import pytest

from ivrbot.campaign.campaign import Campaign, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.dialer import Dialer
from ivrbot.campaign.scheduler import CampaignService
from ivrbot.campaign.store import CampaignStore
from ivrbot.flow.runner import Bot

NOON_IN_NEW_YORK = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
NIGHT_IN_NEW_YORK = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 02:00 EDT
CSV = "number\n+1 212 555 0101\n+1 212 555 0102\n"


class NobodyThere:
    """ivrbot run serving the campaign's flow, every dial failing at once: these tests are
    about when contacts are claimed, not about calls."""

    async def dial(self, number: str) -> NoReturn:
        raise ConnectionError(f"no line to {number}")


def serving(_: str) -> Bot:
    return cast(Bot, NobodyThere())


def dialer(tmp_path: Path, **settings: object) -> Dialer:
    store = CampaignStore(tmp_path / "c.db")
    campaign = Campaign("c", "reminder", retries={}, **settings)  # type: ignore[arg-type]
    store.create(campaign, read_contacts(CSV).contacts)
    return Dialer(campaign, store, Clock(1, NOON_IN_NEW_YORK), lambda _: None)


@pytest.mark.unit
async def test_over_the_abandon_ratio_one_call_at_a_time(tmp_path: Path) -> None:
    d = dialer(tmp_path, max_abandon_ratio=0.03, max_concurrent=4)
    d.answered, d.abandoned, d.active = 20, 1, 1  # 5 % abandoned
    assert await d.tick() == "throttled"
    d.active = 0
    assert await d.tick() != "throttled"
    d.answered, d.abandoned, d.active = 100, 2, 1  # 2 %: under the limit
    assert await d.tick() != "throttled"


@pytest.mark.unit
async def test_concurrency_and_do_not_call_at_dial_time(tmp_path: Path) -> None:
    d = dialer(tmp_path, max_concurrent=2)
    d.active = 2
    assert await d.tick() == "full"
    d.active = 0
    d.store.dnc_add(["+12125550101"], "c")  # added after the import: still honoured
    assert await d.tick() == "dnc"
    assert await d.tick() == "dialled"  # no bot serves the flow: settled as failed
    assert await d.tick() == "idle"  # each contact claimed once
    rows = d.store.attempt_rows("c")
    assert [(r["number"], r["outcome"]) for r in rows] == [
        ("+12125550101", "dnc"),
        ("+12125550102", "failed"),
    ]
    d.store.close()


@pytest.mark.unit
async def test_a_restart_dials_again_when_the_window_is_open(tmp_path: Path) -> None:
    """Stopped while waiting for a window (its wake-up lost): started again in the day, the
    campaign dials."""
    store = CampaignStore(tmp_path / "c.db")
    store.create(Campaign("c", "reminder", retries={}), read_contacts(CSV).contacts)
    night = CampaignService(store, Clock(1, NIGHT_IN_NEW_YORK), serving)
    await night.start()
    await night.control("c", "start")
    async with asyncio.timeout(10):
        while night.scheduler.get_job("wake:c") is None:  # the pace sleeps until 08:00
            await asyncio.sleep(0.05)
    night.scheduler.remove_job("wake:c")
    await night.stop()
    assert store.attempt_rows("c") == []
    day = CampaignService(store, Clock(1, NOON_IN_NEW_YORK), serving)
    await day.start()
    try:
        async with asyncio.timeout(10):
            while len(store.attempt_rows("c")) < 2:
                await asyncio.sleep(0.05)
    finally:
        await day.stop()
    store.close()


@pytest.mark.e2e
async def test_a_campaign_starts_at_its_start_time(tmp_path: Path) -> None:
    store = CampaignStore(tmp_path / "c.db")
    starts = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # an hour after noon in New York
    campaign = Campaign("c", "reminder", retries={}, start_at=starts.isoformat())
    store.create(campaign, read_contacts(CSV).contacts)
    service = CampaignService(store, Clock(3600, NOON_IN_NEW_YORK), serving)
    await service.start()
    try:
        assert await service.control("c", "start") is State.CREATED  # not yet
        async with asyncio.timeout(10):
            while len(store.attempt_rows("c")) < 2:
                await asyncio.sleep(0.05)
    finally:
        await service.stop()
    assert min(float(r["started_at"]) for r in store.attempt_rows("c")) >= starts.timestamp()
    store.close()


@pytest.mark.unit
async def test_each_service_runs_its_own_jobs(tmp_path: Path) -> None:
    """Two campaign services in one process (two gateways, or a restart beside the old one)
    share nothing: each scheduler's jobs run against the service that made it."""
    services = []
    for name in ("a", "b"):
        store = CampaignStore(tmp_path / f"{name}.db")
        campaign = Campaign("c", "reminder", retries={}, calls_per_minute=600)  # 0.1 s a tick
        store.create(campaign, read_contacts(CSV).contacts)
        services.append(CampaignService(store, Clock(1, NOON_IN_NEW_YORK), serving))
    first, second = services
    for service in services:
        await service.start()
    try:
        assert await first.control("c", "start") is State.RUNNING
        async with asyncio.timeout(10):
            while len(first.store.attempt_rows("c")) < 2:  # its pace job ran, at once
                await asyncio.sleep(0.05)
        assert first.ticks >= 1 and second.ticks == 0
        assert second.store.attempt_rows("c") == []
        await second.stop()  # the other one stopping leaves this one's jobs running
        ticks = first.ticks
        async with asyncio.timeout(10):
            while first.ticks == ticks:
                await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
        for service in services:
            service.store.close()
