"""The campaign report an operator reads: every attempt as CSV (names, E.164 numbers, ISO
times in UTC and on the callee's clock, next retry, final) and the report table. The
attempts are written as the dialler writes them (claim, then settle with the retry its
policy gives), on a real SQLite store, at chosen campaign times."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from ivrbot.campaign.campaign import Campaign, RetryPolicy, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.dialer import next_try
from ivrbot.campaign.report import CSV_FIELDS, attempts_csv, full_report, report_view
from ivrbot.campaign.store import CampaignStore

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York (EDT), 09:00 in Chicago
CONTACTS = """number,name,timezone
+1 212 555 0101,Pat Lee,
(312) 555-0103,Rita Cruz,
212 555 0102,Mo Smith,
+1 310 555 0104,Sam Wu,
+44 20 7946 0958,Ann Cole,Europe/London
"""


def attempt(store: CampaignStore, campaign: Campaign, number: str, start: datetime,
            seconds: float, outcome: str | None) -> None:  # fmt: skip
    """One attempt to ``number`` as the dialler makes it: claimed at ``start`` (only that
    contact's zone open), settled ``seconds`` later with ``outcome`` (None: still ringing)."""
    zone = next(c.zone for c in read_contacts(CONTACTS).contacts if c.number == number)
    row = store.claim(campaign.name, [zone], start.timestamp())
    assert row is not None and row["number"] == number
    if outcome is None:
        return
    ended = start.timestamp() + seconds
    again = next_try(campaign, outcome, row["attempt"], ended)
    result = {"outcome": outcome, "call_id": f"c{row['attempt_id']}"}
    store.settle(row["attempt_id"], row["id"], result, ended, again)


def spring(tmp_path: Path) -> tuple[CampaignStore, Campaign]:
    store = CampaignStore(tmp_path / "c.db")
    campaign = Campaign("spring", "reminder", retries={"no-answer": RetryPolicy(3600, 2)})
    store.create(campaign, read_contacts(CONTACTS).contacts)
    attempt(store, campaign, "+12125550101", T0, 30, "no-answer")  # retried an hour later
    attempt(store, campaign, "+13125550103", T0 + timedelta(minutes=1), 95, "completed")
    attempt(store, campaign, "+12125550102", T0 + timedelta(minutes=2), 30, "no-answer")
    attempt(store, campaign, "+12125550101", T0 + timedelta(seconds=3630), 30, "no-answer")
    attempt(store, campaign, "+13105550104", T0 + timedelta(minutes=3), 0, None)  # ringing
    store.set_state("spring", State.RUNNING)
    return store, campaign


def rows(store: CampaignStore) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(attempts_csv(store, "spring"))))


def test_the_csv_names_times_retries_and_final_attempts(tmp_path: Path) -> None:
    store, _ = spring(tmp_path)
    text = attempts_csv(store, "spring")
    assert text.splitlines()[0] == ",".join(CSV_FIELDS)
    assert text.splitlines()[0].startswith(
        "campaign,contact_id,contact_name,number,timezone,attempt,started_at_utc,"
        "started_at_local,ended_at_utc,ended_at_local,outcome,next_retry_utc,"
        "next_retry_local,final,"
    )
    pat1, rita, mo, pat2, sam = rows(store)
    assert {k: pat1[k] for k in CSV_FIELDS[:15]} == {
        "campaign": "spring", "contact_id": "1", "contact_name": "Pat Lee",
        "number": "+12125550101", "timezone": "America/New_York", "attempt": "1",
        "started_at_utc": "2026-03-10T14:00:00+00:00",
        "started_at_local": "2026-03-10T10:00:00-04:00",
        "ended_at_utc": "2026-03-10T14:00:30+00:00",
        "ended_at_local": "2026-03-10T10:00:30-04:00",
        "outcome": "no-answer",
        "next_retry_utc": "2026-03-10T15:00:30+00:00",  # the policy: an hour later
        "next_retry_local": "2026-03-10T11:00:30-04:00",
        "final": "false", "answered_by": "",
    }  # fmt: skip
    # the second no-answer used the last attempt: final, no retry
    assert (pat2["attempt"], pat2["started_at_utc"], pat2["final"], pat2["next_retry_utc"]) == (
        "2", "2026-03-10T15:00:30+00:00", "true", "",
    )  # fmt: skip
    # Chicago is an hour behind New York; completed is final
    assert (rita["contact_name"], rita["number"], rita["started_at_local"]) == (
        "Rita Cruz", "+13125550103", "2026-03-10T09:01:00-05:00",
    )  # fmt: skip
    assert (rita["ended_at_utc"], rita["outcome"], rita["final"], rita["next_retry_utc"]) == (
        "2026-03-10T14:02:35+00:00", "completed", "true", "",
    )  # fmt: skip
    # waiting for its retry: not final
    assert (mo["final"], mo["next_retry_utc"], mo["next_retry_local"]) == (
        "false", "2026-03-10T15:02:30+00:00", "2026-03-10T11:02:30-04:00",
    )  # fmt: skip
    # still ringing: no end, no retry, not final; Los Angeles is three hours behind
    assert (sam["started_at_local"], sam["ended_at_utc"], sam["outcome"], sam["final"]) == (
        "2026-03-10T07:03:00-07:00", "", "", "false",
    )  # fmt: skip
    # a canceled campaign dials nobody again: every ended latest attempt is final
    store.set_state("spring", State.CANCELED)
    mo = rows(store)[2]
    assert (mo["final"], mo["next_retry_utc"]) == ("true", "")
    store.close()


def test_the_report_table_totals_outcomes_and_attempts(tmp_path: Path) -> None:
    store, _ = spring(tmp_path)
    data = full_report(store, "spring", Clock(1, T0 + timedelta(minutes=4)))
    assert data["attempts"] == 5 and data["never_attempted"] == 1  # Ann, in London
    assert data["outcomes"] == {"completed": 1, "no-answer": 3}
    assert data["final_outcomes"] == {"completed": 1, "no-answer": 1}
    assert data["attempts_per_contact"] == {"1": 3, "2": 1}
    json.dumps(data)  # report --json

    console = Console(record=True, width=100)
    console.print(report_view(data))
    text = console.export_text()
    assert text.splitlines()[0] == "campaign spring (flow reminder, running)"
    lines = [line.split() for line in text.splitlines()]
    cells = [[c for c in line if c not in "│┃|"] for line in lines]
    assert ["contacts", "5"] in cells
    assert ["final", "2"] in cells  # Pat (no attempts left) and Rita
    assert ["dialling", "now", "1"] in cells  # Sam
    assert ["to", "call", "or", "retry", "2"] in cells  # Mo (a retry) and Ann
    assert ["attempts", "5"] in cells
    assert ["no-answer", "3", "75%", "1"] in cells  # attempts, share, contacts final
    assert ["completed", "1", "25%", "1"] in cells
    assert ["0", "1"] in cells and ["1", "3"] in cells and ["2", "1"] in cells
    assert "now: dialling: 1 call in progress" in text
    store.close()
