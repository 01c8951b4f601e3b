"""Three campaign days in under a minute (a fast clock): contacts in New York, Chicago, Los
Angeles (zones from their numbers) and London (zone from the CSV), across the US change to
daylight-saving time (Sunday 8 March 2026) and a holiday (Monday 9 March): every call is
inside 08:00-21:00 on the callee's own clock, none on the holiday."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivrbot.campaign.campaign import Campaign, RetryPolicy
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.store import CampaignStore
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee
from ivrbot.wire.server import GatewayServer
from tests.campaign.test_real_calls import run_to_end

pytestmark = pytest.mark.e2e

SATURDAY_NOON_UTC = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
CONTACTS = """number,timezone
+1 212 555 0121,
+1 312 555 0122,
+1 310 555 0123,
+1 212 555 0124,Europe/London
"""
ZONES = {"+12125550121": "America/New_York", "+13125550122": "America/Chicago",
         "+13105550123": "America/Los_Angeles", "+12125550124": "Europe/London"}  # fmt: skip
HOLIDAY = date(2026, 3, 9)


async def test_calls_stay_in_each_callees_window_across_dst_and_a_holiday(
    campaign_gateway: GatewayServer, reminder_bot: Bot, tts: Synthesizer, tmp_path: Path
) -> None:
    callees = [Callee(campaign_gateway.url, n, "reject") for n in ZONES]
    for callee in callees:
        await callee.login(tts)
    store = CampaignStore(tmp_path / "campaigns.db")
    imported = read_contacts(CONTACTS)
    assert {c.number: c.zone for c in imported.contacts} == ZONES
    campaign = Campaign(
        "dst", "reminder", calls_per_minute=600, max_concurrent=4, ring_timeout_s=3,
        retries={"busy": RetryPolicy(4 * 3600, 100)}, extra_holidays=[HOLIDAY.isoformat()],
        stop_at="2026-03-11T12:00:00+00:00",
    )  # fmt: skip
    store.create(campaign, imported.contacts)
    clock = Clock(4 * 3600, SATURDAY_NOON_UTC)
    await run_to_end(store, clock, reminder_bot, "dst", callees, 90)

    rows = store.attempt_rows("dst")
    days: dict[str, set[date]] = {n: set() for n in ZONES}
    for row in rows:
        local = datetime.fromtimestamp(float(row["started_at"]), ZoneInfo(ZONES[row["number"]]))
        assert 8 <= local.hour < 21, f"{row['number']} called at {local}"
        assert local.date() != HOLIDAY, f"{row['number']} called on the holiday ({local})"
        days[row["number"]].add(local.date())
    # every callee was called on Saturday, Sunday (the change) and Tuesday, and the stop
    # time ended it
    for number, called in days.items():
        assert {date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 10)} <= called, number
    assert (
        max(float(r["started_at"]) for r in rows)
        < datetime(2026, 3, 11, 12, tzinfo=UTC).timestamp()
    )
    # the first call in New York on Sunday came when 08:00 EDT (12:00 UTC) arrived, not at
    # 08:00 EST (13:00 UTC) nor before it
    new_york = ZoneInfo("America/New_York")
    sunday = sorted(
        datetime.fromtimestamp(float(r["started_at"]), new_york) for r in rows
        if r["number"] == "+12125550121"
        and datetime.fromtimestamp(float(r["started_at"]), new_york).date() == date(2026, 3, 8)
    )  # fmt: skip
    print("New York, Sunday:", [t.isoformat(timespec="minutes") for t in sunday])
    assert sunday[0].hour == 8 and sunday[0].utcoffset() == timedelta(hours=-4)
    store.close()
