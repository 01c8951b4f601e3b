"""A campaign: which flow calls whom, when, how fast, and what to do with each outcome.

Declared in Python next to the flows (a module with ``campaign = Campaign(...)``) and kept
in the store as JSON, so a restart runs it with the settings it was created with.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from ivrbot.outcomes import Outcome  # an attempt's outcome is its call's (README "Outcomes")

__all__ = ["Campaign", "CampaignError", "Outcome", "RetryPolicy", "State", "Window"]


class CampaignError(ValueError):
    """A campaign that cannot be created or run; the message names what to fix."""


class State(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELED = "canceled"
    FINISHED = "finished"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Window:
    """Callee-local calling hours: ``start``-``end`` on ``days`` (mon..sun)."""

    days: tuple[str, ...] = WEEKDAYS
    start: str = "08:00"
    end: str = "21:00"

    def __post_init__(self) -> None:
        for day in self.days:
            if day not in WEEKDAYS:
                raise CampaignError(f"window day {day!r}: use {', '.join(WEEKDAYS)}")
        if self.hours[0] >= self.hours[1]:
            raise CampaignError(f"window {self.start}-{self.end}: the start must be before the end")

    @property
    def hours(self) -> tuple[time, time]:
        try:
            return time.fromisoformat(self.start), time.fromisoformat(self.end)
        except ValueError as exc:
            raise CampaignError(f"window hours {self.start}-{self.end}: use HH:MM") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """After ``outcome``: try again ``delay_s`` later, up to ``max_attempts`` in all."""

    delay_s: float
    max_attempts: int


DEFAULT_RETRIES = {
    Outcome.NO_ANSWER: RetryPolicy(3600, 3),
    Outcome.BUSY: RetryPolicy(900, 3),
    Outcome.FAILED: RetryPolicy(1800, 2),
    Outcome.INTERRUPTED: RetryPolicy(60, 3),
    Outcome.ABANDONED: RetryPolicy(600, 2),
}


@dataclass
class Campaign:
    name: str
    flow: str  # the outbound flow's name (flows/)
    windows: list[Window] = field(default_factory=lambda: [Window()])
    holidays: str = ""  # a country code for the ``holidays`` package ('' none), e.g. 'US'
    extra_holidays: list[str] = field(default_factory=list)  # ISO dates with no calls
    calls_per_minute: float = 30
    max_concurrent: int = 4
    ring_timeout_s: float = 30
    retries: dict[str, RetryPolicy] = field(
        default_factory=lambda: {str(k): r for k, r in DEFAULT_RETRIES.items()}
    )
    machine: str = "message"  # 'message' (leave it after the beep) or 'hangup'
    caller_id: str = ""  # the number shown to callees ('' : the flow's number)
    max_abandon_ratio: float = 0.03
    start_at: str = ""  # ISO date-time (UTC if no offset) before which nothing is dialled
    stop_at: str = ""  # ISO date-time after which the campaign finishes
    default_region: str = "US"  # for numbers written without +country
    contacts: str = ""  # a CSV file imported by ``ivrbot campaign create``
    dnc: str = ""  # a CSV of numbers never to call in this campaign
    opt_out: str = "campaign"  # whose do-not-call list a callee who opts out goes on: or 'global'

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise CampaignError(f"campaign name {self.name!r}: use letters, digits, - and _")
        if self.calls_per_minute <= 0 or self.max_concurrent < 1:
            raise CampaignError("calls_per_minute must be > 0 and max_concurrent >= 1")
        if self.opt_out not in ("campaign", "global"):
            raise CampaignError(f"opt_out={self.opt_out!r}: use 'campaign' or 'global'")
        if self.machine not in ("message", "hangup"):
            raise CampaignError(f"machine={self.machine!r}: use 'message' or 'hangup'")
        self.windows = [w if isinstance(w, Window) else Window(**w) for w in self.windows]
        unknown = [k for k in self.retries if k not in set(Outcome)]
        if unknown:
            raise CampaignError(f"retries: {unknown[0]!r} is not an outcome; use one of "
                                f"{', '.join(Outcome)} (README \"Outcomes\")")  # fmt: skip
        self.retries = {
            str(k): r if isinstance(r, RetryPolicy) else RetryPolicy(**r)
            for k, r in self.retries.items()
        }

    def retry_for(self, outcome: str) -> RetryPolicy | None:
        return self.retries.get(outcome)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Campaign:
        data = dict(data)
        data["windows"] = [Window(**{**w, "days": tuple(w["days"])}) for w in data["windows"]]
        data["retries"] = {k: RetryPolicy(**r) for k, r in data["retries"].items()}
        return cls(**data)


def load_campaign_file(path: Path) -> Campaign:
    """The ``campaign`` (a Campaign) declared in the Python module ``path``."""
    if not path.is_file():
        raise CampaignError(f"{path}: no such campaign file")
    spec = importlib.util.spec_from_file_location(f"ivrbot_campaign_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CampaignError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except CampaignError as exc:
        raise CampaignError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise CampaignError(f"{path}: does not load ({exc.__class__.__name__}: {exc})") from exc
    campaign = getattr(module, "campaign", None)
    if not isinstance(campaign, Campaign):
        raise CampaignError(f"{path}: declare campaign = Campaign(...) in it")
    if campaign.contacts and not Path(campaign.contacts).is_absolute():
        campaign.contacts = str(path.parent / campaign.contacts)
    if campaign.dnc and not Path(campaign.dnc).is_absolute():
        campaign.dnc = str(path.parent / campaign.dnc)
    return campaign
