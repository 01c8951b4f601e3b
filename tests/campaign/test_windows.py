"""Calling windows on the callee's clock, holidays, the clock, and the retry policy (pure
logic: no calls)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ivrbot.campaign.campaign import Campaign, CampaignError, RetryPolicy, Window
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.dialer import next_try
from ivrbot.campaign.windows import Windows
from ivrbot.testing.clock import VirtualClock

pytestmark = pytest.mark.unit


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_window_follows_the_callees_clock_across_daylight_saving() -> None:
    w = Windows(Campaign("c", "reminder"))
    ny = "America/New_York"
    assert not w.is_open(ny, utc(2026, 3, 7, 12, 59))  # Saturday 07:59 EST
    assert w.is_open(ny, utc(2026, 3, 7, 13, 0))  # 08:00 EST
    assert w.is_open(ny, utc(2026, 3, 8, 12, 0))  # Sunday 08:00 EDT (the clocks went forward)
    assert not w.is_open(ny, utc(2026, 3, 9, 1, 0))  # Sunday 21:00 EDT
    assert w.next_open(ny, utc(2026, 3, 7, 23, 0)) == utc(2026, 3, 8, 12, 0)
    assert w.next_open("Europe/London", utc(2026, 3, 28, 22, 0)) == utc(2026, 3, 29, 7, 0)


def test_holidays_weekdays_and_hours() -> None:
    c = Campaign("c", "reminder", holidays="US", extra_holidays=["2026-03-10"],
                 windows=[Window(("mon", "tue", "wed", "thu", "fri"), "09:00", "17:30")])  # fmt: skip
    w = Windows(c)
    chicago = "America/Chicago"
    assert not w.is_open(chicago, utc(2026, 7, 3, 16, 0))  # Friday, Independence Day observed
    assert not w.is_open(chicago, utc(2026, 3, 10, 16, 0))  # the campaign's own holiday
    assert not w.is_open(chicago, utc(2026, 3, 7, 16, 0))  # Saturday
    assert w.is_open(chicago, utc(2026, 3, 11, 22, 29)) and not w.is_open(
        chicago, utc(2026, 3, 11, 22, 30)
    )
    # after the Friday holiday and the weekend: Monday 6 July 09:00 CDT
    assert w.next_open(chicago, utc(2026, 7, 2, 23, 0)) == utc(2026, 7, 6, 14, 0)


def test_bad_settings_name_what_to_fix() -> None:
    with pytest.raises(CampaignError, match="window day 'funday'"):
        Window(("funday",))
    with pytest.raises(CampaignError, match="start must be before the end"):
        Window(start="21:00", end="08:00")
    with pytest.raises(CampaignError, match="holidays='XX'"):
        Windows(Campaign("c", "reminder", holidays="XX"))
    with pytest.raises(CampaignError, match="IVRBOT_CAMPAIGN_CLOCK"):
        Clock.from_setting("fast")


def test_a_fast_clock_maps_campaign_time_to_real_time() -> None:
    clock = Clock(3600, utc(2026, 3, 7, 12, 0), 1000.0)
    assert clock.to_campaign(1001.0) == utc(2026, 3, 7, 13, 0)
    assert clock.to_real(utc(2026, 3, 7, 14, 0)).timestamp() == pytest.approx(1002.0)
    assert Clock.from_setting("60@2026-03-07T12:00:00").start == utc(2026, 3, 7, 12, 0)


async def test_the_campaign_clock_runs_on_the_process_clock() -> None:
    """A fast campaign clock reads real time from the clock it is given (the composition
    root's; here a virtual one): 10 s of it are 10 campaign hours at 3600x."""
    base = VirtualClock(1000.0)
    clock = Clock.from_setting("3600@2026-03-07T12:00:00+00:00", base)
    assert clock.now() == utc(2026, 3, 7, 12, 0)
    await base.advance(10.0)
    assert clock.now() == utc(2026, 3, 7, 22, 0)
    assert clock.real_now().timestamp() == 1010.0


def test_the_retry_policy_counts_attempts_in_all() -> None:
    c = Campaign("c", "reminder", retries={"no-answer": RetryPolicy(600, 3)})
    assert next_try(c, "no-answer", 1, 0.0) == 600.0
    assert next_try(c, "no-answer", 3, 0.0) is None
    assert next_try(c, "completed", 1, 0.0) is None
    assert Campaign.from_dict(c.to_dict()) == c
    assert timedelta(seconds=next_try(c, "no-answer", 2, 0.0) or 0) == timedelta(minutes=10)
