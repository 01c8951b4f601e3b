"""Why a campaign is not dialling and when its next call is due, on the campaign's own
clock (a chosen moment) and each callee's wall clock; a real store, no call placed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ivrbot.campaign.activity import Activity, activity
from ivrbot.campaign.campaign import Campaign, RetryPolicy, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.store import CampaignStore, note_key

pytestmark = pytest.mark.unit

NIGHT = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 in New York, 07:00 in London
NOON_IN_NEW_YORK = datetime(2026, 3, 10, 16, 0, tzinfo=UTC)
NEW_YORK = "number\n+1 212 555 0101\n+1 212 555 0102\n"


def store_with(tmp_path: Path, csv: str = NEW_YORK, **settings: object) -> CampaignStore:
    store = CampaignStore(tmp_path / "c.db")
    campaign = Campaign("spring", "reminder", **settings)  # type: ignore[arg-type]
    store.create(campaign, read_contacts(csv).contacts)
    store.set_state("spring", State.RUNNING)
    return store


def at(store: CampaignStore, moment: datetime, served: bool | None = None) -> Activity:
    return activity(store, "spring", Clock(1, moment), served)


def test_outside_calling_hours_until_the_callees_window_opens(tmp_path: Path) -> None:
    store = store_with(tmp_path)
    now = at(store, NIGHT)
    assert now.why == "outside-hours"
    assert now.text == (
        "outside calling hours until 08:00 callee-local (America/New_York) / 12:00 UTC "
        "on Tue 2026-03-10"
    )
    assert now.to_dict()["next_call_at"] == "2026-03-10T12:00:00+00:00"
    assert now.to_dict()["next_call_local"] == "2026-03-10T08:00:00-04:00"
    assert at(store, NOON_IN_NEW_YORK).why == "due"


def test_the_earliest_zone_gives_the_next_call(tmp_path: Path) -> None:
    store = store_with(tmp_path, NEW_YORK + "+44 20 7946 0958\n")  # London opens first
    now = at(store, NIGHT)
    assert now.zone == "Europe/London" and now.text == (
        "outside calling hours until 08:00 callee-local (Europe/London) / 08:00 UTC "
        "on Tue 2026-03-10"
    )


def test_waiting_for_retries_and_a_retry_after_hours(tmp_path: Path) -> None:
    store = store_with(tmp_path, retries={"no-answer": RetryPolicy(3600, 3)})
    for minute in (0, 5):  # both tried at noon, not answered: retried an hour later
        start = NOON_IN_NEW_YORK + timedelta(minutes=minute)
        row = store.claim("spring", ["America/New_York"], start.timestamp())
        assert row is not None
        store.settle(row["attempt_id"], row["id"], {"outcome": "no-answer"},
                     start.timestamp() + 30, start.timestamp() + 3630)  # fmt: skip
    now = at(store, NOON_IN_NEW_YORK + timedelta(minutes=10))
    assert (now.why, now.text) == (
        "retries",
        "waiting for retries until 13:00 callee-local (America/New_York) / 17:00 UTC "
        "on Tue 2026-03-10",
    )
    # at 20:30 their retries fall after 21:00: the next call is at the next opening
    evening = datetime(2026, 3, 11, 0, 30, tzinfo=UTC)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE campaign_contacts SET next_try_at = ?",
                             ((evening + timedelta(hours=1)).timestamp(),))  # fmt: skip
    assert at(store, evening).text == (
        "outside calling hours until 08:00 callee-local (America/New_York) / 12:00 UTC "
        "on Wed 2026-03-11"
    )


def test_a_holiday_is_named(tmp_path: Path) -> None:
    store = store_with(tmp_path, extra_holidays=["2026-03-10"])
    assert at(store, NOON_IN_NEW_YORK).text == (
        "outside calling hours (a holiday there) until 08:00 callee-local "
        "(America/New_York) / 12:00 UTC on Wed 2026-03-11"
    )


def test_paused_not_served_done_and_the_other_states(tmp_path: Path) -> None:
    store = store_with(tmp_path, start_at="2026-03-12T12:00:00+00:00")
    assert at(store, NOON_IN_NEW_YORK, served=False).text == (
        "not dialling: ivrbot run does not serve its flow 'reminder'"
    )
    store.set_state("spring", State.PAUSED)
    assert at(store, NOON_IN_NEW_YORK).text == (
        "paused by the operator: ivrbot campaign resume spring"
    )
    store.set_meta(note_key("spring"), "its flow 'reminder' was not served")
    assert at(store, NOON_IN_NEW_YORK).why == "flow-not-served"
    store.set_state("spring", State.CREATED)
    assert at(store, NOON_IN_NEW_YORK).text == "not started: ivrbot campaign start spring"
    store.set_state("spring", State.CANCELED)
    assert at(store, NOON_IN_NEW_YORK).why == "canceled"
    store.set_state("spring", State.RUNNING)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE campaign_contacts SET state = 'dialing'")
    assert at(store, NOON_IN_NEW_YORK).text == "dialling: 2 calls in progress"
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE campaign_contacts SET state = 'done'")
    assert at(store, NOON_IN_NEW_YORK).why == "done"
    store.set_state("spring", State.FINISHED)
    assert at(store, NOON_IN_NEW_YORK).text == "finished: every contact has its final outcome"
