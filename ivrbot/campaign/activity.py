"""What a campaign is doing now, and when not dialling, why and when its next call is due
(``ivrbot campaign status``, ``report`` and the HTTP API).

Decided on the campaign's own clock (clock.py) and the callee's wall clock (windows.py):
a contact may be called at the first moment that is both at or after its next try and
inside its zone's window. The next call of the campaign is the earliest such moment over
the zones of its pending contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from ivrbot.campaign.campaign import Campaign, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.store import CampaignStore, note_key
from ivrbot.campaign.windows import Windows

# what ``why`` says: a call is being placed or due now, or why none is
WHY = ("dialling", "due", "outside-hours", "retries", "no-window", "not-started", "scheduled",
       "paused", "flow-not-served", "done", "finished", "canceled")  # fmt: skip


@dataclass(frozen=True)
class Activity:
    why: str  # one of WHY
    text: str  # one line for an operator
    next_call_at: datetime | None = None  # campaign time (UTC)
    zone: str = ""  # the callee zone of the next call

    def to_dict(self) -> dict[str, Any]:
        at = self.next_call_at
        return {
            "why": self.why,
            "text": self.text,
            "next_call_at": iso(at),
            "next_call_local": iso(at, self.zone) if self.zone else None,
            "zone": self.zone or None,
        }


def iso(at: datetime | None, zone: str = "") -> str | None:
    """``at`` as ISO 8601 to the second: in UTC, or on the wall clock of ``zone``."""
    if at is None:
        return None
    return at.astimezone(ZoneInfo(zone) if zone else UTC).isoformat(timespec="seconds")


def moment(at: datetime, zone: str) -> str:
    """'08:00 callee-local (America/New_York) / 12:00 UTC on Tue 2026-03-10' (the local
    date)."""
    local = at.astimezone(ZoneInfo(zone))
    return (f"{local:%H:%M} callee-local ({zone}) / {at.astimezone(UTC):%H:%M} UTC "
            f"on {local:%a %Y-%m-%d}")  # fmt: skip


def parse_at(text: str) -> datetime:
    """A campaign's start_at / stop_at (UTC when it has no offset)."""
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def activity(store: CampaignStore, name: str, clock: Clock, served: bool | None = None) -> Activity:
    """What campaign ``name`` is doing at ``clock``'s now. ``served``: whether ivrbot run
    serves its flow (None: not known, e.g. the CLI reading the database)."""
    campaign, state = store.campaign(name)
    now = clock.now()
    if state is State.CREATED:
        if campaign.start_at and "start" in store.jobs(name):
            return Activity("scheduled", f"not dialling: starts at {campaign.start_at} (start_at)")
        return Activity("not-started", f"not started: ivrbot campaign start {name}")
    if state is State.PAUSED:
        note = store.get_meta(note_key(name))
        why = "flow-not-served" if note else "paused"
        return Activity(why, f"paused: {note}" if note else
                        f"paused by the operator: ivrbot campaign resume {name}")  # fmt: skip
    if state is State.CANCELED:
        return Activity("canceled", "canceled: nothing more is dialled")
    if state is State.FINISHED:
        if campaign.stop_at and parse_at(campaign.stop_at) <= now:
            return Activity("finished", f"finished: its stop time {campaign.stop_at} passed")
        return Activity("finished", "finished: every contact has its final outcome")
    if served is False:
        return Activity("flow-not-served", f"not dialling: ivrbot run does not serve its "
                        f"flow {campaign.flow!r}")  # fmt: skip
    dialling = store.counts(name)["contacts"].get("dialing", 0)
    if dialling:
        return Activity("dialling", f"dialling: {dialling} call{'s' * (dialling != 1)} "
                        "in progress")  # fmt: skip
    return _next_call(campaign, store.pending_by_zone(name), now)


def _next_call(campaign: Campaign, pending: dict[str, float], now: datetime) -> Activity:
    """A running campaign with no call in progress: when its next call is due, and why not
    sooner."""
    if not pending:
        return Activity("done", "done: every contact has its final outcome (finishing)")
    windows = Windows(campaign)
    best: tuple[datetime, str, str] | None = None  # (due, zone, why)
    for zone, next_try in pending.items():
        earliest = max(now, datetime.fromtimestamp(next_try, UTC))
        if windows.is_open(zone, earliest):
            due, why = earliest, ("due" if earliest <= now else "retries")
        else:
            opening = windows.next_open(zone, earliest)
            if opening is None:
                continue
            due, why = opening, "outside-hours"
        if best is None or due < best[0]:
            best = (due, zone, why)
    if best is None:
        zones = ", ".join(sorted(pending))
        return Activity("no-window", f"not dialling: no calling window opens within a year "
                        f"for {zones} (check the campaign's windows and holidays)")  # fmt: skip
    due, zone, why = best
    if campaign.stop_at and parse_at(campaign.stop_at) <= due:
        return Activity(why, f"not dialling: its stop time {campaign.stop_at} comes before "
                        f"the next call ({moment(due, zone)})", due, zone)  # fmt: skip
    if why == "due":
        return Activity(why, f"a call is due now ({zone})", due, zone)
    if why == "retries":
        return Activity(why, f"waiting for retries until {moment(due, zone)}", due, zone)
    local_day = now.astimezone(ZoneInfo(zone)).date()
    holiday = " (a holiday there)" if windows.holiday(local_day) else ""
    return Activity(why, f"outside calling hours{holiday} until {moment(due, zone)}", due, zone)
