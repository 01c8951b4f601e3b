"""Lawful calling hours in the callee's time zone: weekly windows and holidays.

Whether a zone's window is open is decided on the callee's local wall clock (zoneinfo, so
daylight-saving changes move the window with the clock); the next opening comes from an
APScheduler ``CronTrigger`` in that zone, skipping holidays.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
from apscheduler.triggers.cron import CronTrigger

from ivrbot.campaign.campaign import WEEKDAYS, Campaign, CampaignError


@lru_cache(maxsize=64)
def _calendar(country: str) -> holiday_calendars.HolidayBase:
    try:
        return holiday_calendars.country_holidays(country)
    except NotImplementedError as exc:
        raise CampaignError(
            f"holidays={country!r}: not a country the holidays package knows"
        ) from exc


class Windows:
    """The calling windows of one campaign."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        self.extra = {date.fromisoformat(d) for d in campaign.extra_holidays}
        self.calendar = _calendar(campaign.holidays) if campaign.holidays else None

    def holiday(self, day: date) -> bool:
        return day in self.extra or (self.calendar is not None and day in self.calendar)

    def is_open(self, zone: str, at: datetime) -> bool:
        """Whether a callee in ``zone`` may be called at ``at`` (aware)."""
        local = at.astimezone(ZoneInfo(zone))
        if self.holiday(local.date()):
            return False
        day = WEEKDAYS[local.weekday()]
        now = local.time().replace(tzinfo=None)
        for window in self.campaign.windows:
            start, end = window.hours
            if day in window.days and start <= now < end:
                return True
        return False

    def closes(self, zone: str, at: datetime) -> datetime:
        """When the window open at ``at`` closes (UTC): the call must be placed before."""
        tz = ZoneInfo(zone)
        local = at.astimezone(tz)
        for window in self.campaign.windows:
            start, end = window.hours
            if start <= local.time().replace(tzinfo=None) < end:
                return datetime.combine(local.date(), end, tz).astimezone(UTC)
        return at

    def next_open(self, zone: str, after: datetime) -> datetime | None:
        """The next moment after ``after`` when ``zone``'s window opens (UTC), holidays
        skipped; None if none within a year."""
        best: datetime | None = None
        for window in self.campaign.windows:
            start, _ = window.hours
            trigger = CronTrigger(
                day_of_week=",".join(window.days),
                hour=start.hour,
                minute=start.minute,
                timezone=ZoneInfo(zone),
            )
            moment: datetime | None = after
            for _ in range(400):
                moment = trigger.get_next_fire_time(None, moment + timedelta(seconds=1))  # type: ignore[operator]
                if moment is None or not self.holiday(moment.date()):
                    break
            if moment is not None and (best is None or moment < best):
                best = moment
        return best.astimezone(UTC) if best is not None else None
