"""A campaign over real calls through the gateway: callees who answer as a person, as a
machine with a beep, reject, never answer, opt out, and one on the do-not-call list."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivrbot.campaign.campaign import Campaign, RetryPolicy, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.report import attempts_csv, summary
from ivrbot.campaign.scheduler import CampaignService
from ivrbot.campaign.store import CampaignStore
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee
from ivrbot.testing.caller import SPEECH_DB
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.e2e

MONDAY_10AM_NEW_YORK = datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
CONTACTS = """number,name,appointment
+1 212 555 0101,Pat,9am
+1 212 555 0102,Mo,10am
(212) 555-0103,Rita,11am
212.555.0104,Sam,noon
+12125550105,Otto,1pm
+12125550106,Dina,2pm
"""
KINDS = {"2125550101": ("person", "1"), "2125550102": ("machine", ""),
         "2125550103": ("reject", ""), "2125550104": ("silent", ""),
         "2125550105": ("person", "9"), "2125550106": ("person", "1")}  # fmt: skip


async def run_to_end(
    store: CampaignStore, clock: Clock, bot: Bot, name: str, callees: list[Callee], timeout_s: float
) -> None:
    """Start campaign ``name`` and wait until it is finished; then log the callees out."""
    service = CampaignService(store, clock, lambda _: bot)
    await service.start()
    try:
        await service.control(name, "start")
        async with asyncio.timeout(timeout_s):
            while (await store.run(store.campaign, name))[1] is not State.FINISHED:
                await asyncio.sleep(0.2)
    finally:
        await service.stop()
        await asyncio.gather(*(c.close() for c in callees))


async def test_outcomes_retries_and_do_not_call(
    campaign_gateway: GatewayServer,
    reminder_bot: Bot,
    tts: Synthesizer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ivrbot.campaigns")
    callees = {n: Callee(campaign_gateway.url, n, kind, key) for n, (kind, key) in KINDS.items()}
    for callee in callees.values():
        await callee.login(tts)
    store = CampaignStore(tmp_path / "campaigns.db")
    imported = read_contacts(CONTACTS)
    assert not imported.errors
    campaign = Campaign(
        "visits", "reminder", calls_per_minute=600, max_concurrent=6, ring_timeout_s=3,
        retries={"no-answer": RetryPolicy(600, 2)},
    )  # fmt: skip
    store.create(campaign, imported.contacts)
    store.dnc_add(["+12125550106"])  # the global list
    clock = Clock(60, MONDAY_10AM_NEW_YORK)
    await run_to_end(store, clock, reminder_bot, "visits", list(callees.values()), 120)

    rows = store.attempt_rows("visits")
    by_number: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        by_number.setdefault(str(row["number"])[-10:], []).append(row)
    outcomes = {n: [r["outcome"] for r in attempts] for n, attempts in by_number.items()}
    assert outcomes == {
        "2125550101": ["completed"],
        "2125550102": ["machine"],
        "2125550103": ["busy"],  # the callee turned it down ("User busy")
        "2125550104": ["no-answer", "no-answer"],
        "2125550105": ["opted-out"],
        "2125550106": ["dnc"],
    }
    assert by_number["2125550101"][0]["flow_result"] == "confirmed"
    assert by_number["2125550102"][0]["answered_by"] == "machine"
    assert by_number["2125550102"][0]["flow_result"] == "voicemail"
    # the silent callee rang twice, the second time after the retry delay (campaign time)
    first, second = by_number["2125550104"]
    assert float(second["started_at"]) - float(first["ended_at"]) >= 600  # type: ignore[arg-type]
    assert callees["2125550104"].rings == 2
    assert callees["2125550106"].rings == 0  # on the do-not-call list: never rang
    assert callees["2125550101"].answered == 1 and callees["2125550105"].answered == 1
    # the callee who pressed 9 is on the campaign's do-not-call list at once
    assert store.dnc_numbers("visits") == ["+12125550105"]
    # every attempt inside 08:00-21:00 in New York
    for row in rows:
        local = datetime.fromtimestamp(float(row["started_at"]), ZoneInfo("America/New_York"))  # type: ignore[arg-type]
        assert 8 <= local.hour < 21
    report = summary(store, "visits")
    assert report["state"] == "finished" and report["done"] == 6 and report["total"] == 6
    # the operator's CSV of those calls: names, New York time (EDT), Sam retried as planned
    sheet = list(csv.DictReader(io.StringIO(attempts_csv(store, "visits"))))
    assert len(sheet) == 7
    others = [r for r in sheet if r["contact_name"] != "Sam"]
    assert {(r["contact_name"], r["outcome"], r["final"]) for r in others} == {
        ("Pat", "completed", "true"), ("Mo", "machine", "true"), ("Rita", "busy", "true"),
        ("Otto", "opted-out", "true"), ("Dina", "dnc", "true"),
    }  # fmt: skip
    sam1, sam2 = (r for r in sheet if r["contact_name"] == "Sam")
    assert (sam1["final"], sam2["final"], sam2["next_retry_utc"]) == ("false", "true", "")
    assert sam1["ended_at_utc"] < sam1["next_retry_utc"] <= sam2["started_at_utc"]
    assert all(r["started_at_local"].endswith("-04:00") for r in sheet)
    assert report["abandon_ratio"] == 0.0
    # the operator's log: one line per settled call attempt, saying whether it is retried
    lines = [r.getMessage() for r in caplog.records if r.name == "ivrbot.campaigns"]
    attempts = [line for line in lines if line.startswith("attempt campaign=visits ")]
    assert "attempt campaign=visits number=+12125550101 attempt=1 outcome=completed" in attempts
    first_try = [a for a in attempts if "+12125550104 attempt=1 outcome=no-answer" in a]
    assert len(first_try) == 1 and "retry_at=" in first_try[0]
    assert lines[0] == "campaign campaign=visits state=running was=created"
    store.close()


async def test_a_machine_is_hung_up_on_when_the_policy_says_so(
    campaign_gateway: GatewayServer, reminder_bot: Bot, tts: Synthesizer, tmp_path: Path
) -> None:
    machine = Callee(campaign_gateway.url, "+12125550111", "machine")
    await machine.login(tts)
    store = CampaignStore(tmp_path / "campaigns.db")
    store.create(Campaign("quiet", "reminder", machine="hangup"),
                 read_contacts("number\n+1 212 555 0111\n").contacts)  # fmt: skip
    await run_to_end(store, Clock(60, MONDAY_10AM_NEW_YORK), reminder_bot, "quiet", [machine], 60)
    [row] = store.attempt_rows("quiet")
    assert (row["outcome"], row["answered_by"], row["flow_result"]) == (
        "machine", "machine", "machine-hangup",
    )  # fmt: skip
    # the machine recorded nothing from the bot: no speech reached it
    assert (
        machine.answered == 1 and max((db for _, db in machine.ear.levels), default=-99) < SPEECH_DB
    )
    store.close()
