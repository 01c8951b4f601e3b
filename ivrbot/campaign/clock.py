"""The campaign clock: real time, or a faster one that starts at a chosen moment.

``IVRBOT_CAMPAIGN_CLOCK`` (one setting): empty for real time, or ``SPEED`` or
``SPEED@START`` (e.g. ``3600@2026-03-07T12:00:00+00:00``: one real second is an hour of
campaign time, starting at that moment). Calling windows, holidays and retry times are in
campaign time; APScheduler runs jobs in real time, so the clock maps one to the other. Real
time is read from ``base``, the process's :class:`~ivrbot.clock.Clock` (the composition
root's; a test's virtual one). The campaign clock is a mapping, not a Clock of its own:
nothing sleeps on campaign time (APScheduler waits in real time until the mapped moment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ivrbot import clock as base_clock
from ivrbot.campaign.campaign import CampaignError


@dataclass
class Clock:
    speed: float = 1.0
    start: datetime | None = None  # campaign time at real ``_t0`` (None: now)
    _t0: float = math.nan  # real time (epoch seconds) when campaign time was ``start`` (nan: now)
    base: base_clock.Clock = base_clock.REAL_CLOCK  # where real time is read

    def __post_init__(self) -> None:
        if math.isnan(self._t0):
            self._t0 = self.base.time()
        if self.speed <= 0:
            raise CampaignError(f"IVRBOT_CAMPAIGN_CLOCK speed {self.speed}: must be > 0")
        if self.start is None:
            self.start = datetime.fromtimestamp(self._t0, UTC)

    @property
    def real(self) -> bool:
        return self.speed == 1.0

    def now(self) -> datetime:
        """Campaign time now (UTC)."""
        return self.to_campaign(self.base.time())

    def real_now(self) -> datetime:
        """Real time now (UTC), on the base clock."""
        return datetime.fromtimestamp(self.base.time(), UTC)

    def to_campaign(self, real_ts: float) -> datetime:
        assert self.start is not None
        return self.start + timedelta(seconds=(real_ts - self._t0) * self.speed)

    def to_real(self, at: datetime) -> datetime:
        """The real moment (UTC) when campaign time reaches ``at``."""
        assert self.start is not None
        real_ts = self._t0 + (at - self.start).total_seconds() / self.speed
        return datetime.fromtimestamp(real_ts, UTC)

    def real_seconds(self, campaign_seconds: float) -> float:
        return campaign_seconds / self.speed

    @classmethod
    def from_setting(cls, text: str, base: base_clock.Clock = base_clock.REAL_CLOCK) -> Clock:
        text = text.strip()
        if not text:
            return cls(base=base)
        speed_text, _, start_text = text.partition("@")
        try:
            speed = float(speed_text)
            start = datetime.fromisoformat(start_text) if start_text else None
        except ValueError as exc:
            raise CampaignError(
                f"IVRBOT_CAMPAIGN_CLOCK={text!r}: use SPEED or SPEED@ISO-DATE-TIME "
                "(e.g. 3600@2026-03-07T12:00:00+00:00)"
            ) from exc
        if start is not None and start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return cls(speed, start, base=base)
