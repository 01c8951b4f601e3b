"""The campaign clock: real time, or a faster one that starts at a chosen moment.

``IVRBOT_CAMPAIGN_CLOCK`` (one setting): empty for real time, or ``SPEED`` or
``SPEED@START`` (e.g. ``3600@2026-03-07T12:00:00+00:00``: one real second is an hour of
campaign time, starting at that moment). Calling windows, holidays and retry times are in
campaign time; APScheduler runs jobs in real time, so the clock maps one to the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ivrbot.campaign.campaign import CampaignError


@dataclass
class Clock:
    speed: float = 1.0
    start: datetime | None = None  # campaign time at real ``_t0`` (None: now)
    _t0: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise CampaignError(f"IVRBOT_CAMPAIGN_CLOCK speed {self.speed}: must be > 0")
        if self.start is None:
            self.start = datetime.fromtimestamp(self._t0, UTC)

    @property
    def real(self) -> bool:
        return self.speed == 1.0

    def now(self) -> datetime:
        """Campaign time now (UTC)."""
        return self.to_campaign(time.time())

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
    def from_setting(cls, text: str) -> Clock:
        text = text.strip()
        if not text:
            return cls()
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
        return cls(speed, start)
