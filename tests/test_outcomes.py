"""The outcome vocabulary's rules (what the gateway's reasons and a flow's state come to, old
names read back) and the two ways of writing a party: E.164 in data, human on screens."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivrbot.campaign.campaign import Campaign, CampaignError
from ivrbot.cli.calls import calls
from ivrbot.core.call_state import Reason
from ivrbot.numbers import e164, shown
from ivrbot.outcomes import Outcome, of_flow, of_reason, read, stored_as
from ivrbot.store import CallRecord, SqliteStore

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


def test_every_gateway_reason_has_an_outcome_name() -> None:
    names = {str(o) for o in Outcome}
    for reason in Reason:
        assert of_reason(reason, answered=True) in names, reason
    assert of_reason(Reason.BUSY, answered=False) == "busy"
    assert of_reason("Call rejected", answered=False) == "rejected"  # SIP 603 only
    assert of_reason(Reason.HANGUP, answered=True) == "completed"  # between people
    assert of_reason(Reason.NOT_FOUND, answered=False) == "not-found"
    assert of_reason("Unreachable", answered=False) == "failed"
    assert of_reason("", answered=False) == "canceled"  # the caller's side gave up
    assert of_reason("something new", answered=False) == "failed"


@pytest.mark.parametrize(
    ("set_outcome", "variables", "ran", "ended", "expected"),
    [
        ("", {}, True, "", "completed"),  # the bot hung up
        ("", {}, True, "Call terminated", "caller-hangup"),
        ("", {}, True, "Connection lost", "connection-lost"),
        ("", {"answered_by": "machine"}, True, "", "machine"),
        ("", {"answered_by": "machine"}, True, "Call terminated", "machine"),
        ("", {}, False, "Call terminated", "abandoned"),  # answered, no step ran
        ("error", {}, True, "", "error"),
        ("transferred", {}, True, "Call transferred", "transferred"),
        ("no-input", {}, True, "", "no-input"),  # a step decided it
        ("error", {"result": "opted-out"}, True, "", "opted-out"),  # never to call again
    ],
)
def test_a_flows_outcome_as_its_call_ends(
    set_outcome: str, variables: dict[str, str], ran: bool, ended: str, expected: str
) -> None:
    assert of_flow(set_outcome, variables, ran, ended) == expected


def test_old_names_read_as_todays() -> None:
    assert read("not-answered", "User busy") == "busy"
    assert read("not-answered", "No answer") == "no-answer"
    assert read("not-answered", "Call rejected") == "rejected"
    assert read("not-answered") == "no-answer"
    assert read("lost") == "connection-lost" and read("unreachable") == "failed"
    assert read("completed") == "completed" and read("in-progress") == "in-progress"
    assert "not-answered" in stored_as("busy") and "lost" in stored_as("connection-lost")


def test_a_campaigns_retries_use_the_same_names() -> None:
    campaign = Campaign("c", "reminder", retries={"busy": {"delay_s": 60, "max_attempts": 2}})  # type: ignore[dict-item]
    assert campaign.retry_for(Outcome.BUSY) is not None
    with pytest.raises(CampaignError, match="'not-answered' is not an outcome; use one of"):
        Campaign("c", "reminder", retries={"not-answered": {"delay_s": 60, "max_attempts": 2}})  # type: ignore[dict-item]


def test_the_readme_documents_every_outcome() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n### Outcomes", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", section, re.MULTILINE))
    assert documented == {str(o) for o in Outcome}


def test_parties_are_data_in_e164_and_human_on_screens() -> None:
    for party in ("tel:+15550001010", "tel:+5550001010", "vtn:5550001010", "(555) 000-1010",
                  "+1 555 000 1010", "sip:+15550001010@pbx.example.com;transport=udp"):  # fmt: skip
        assert e164(party) == "+15550001010", party
        assert shown(party) == "+1 (555) 000-1010", party
    assert e164("sip:alice@ivrbot.local") == shown("sip:alice@ivrbot.local") == "alice@ivrbot.local"
    assert e164("911") == shown("911") == "911"
    assert e164("tel:+442079460958") == shown("+44 20 7946 0958") == "+442079460958"
    assert "tel:" not in shown("tel:+15550001013") and "vtn:" not in shown("vtn:5550001013")


def test_calls_list_shows_people_numbers_and_finds_old_records_by_todays_name(
    tmp_path: Path,
) -> None:
    db = tmp_path / "calls.db"

    async def fill() -> None:
        store = SqliteStore(db)
        await store.add_call(CallRecord("c1", "tel:+15550001013", "tel:+5550001000", 1000.0,
                                        None, 1001.0, "User busy", 0.0, "a1", ""))  # fmt: skip
        await store.add_flow_call({
            "id": "f1", "flow": "reminder", "caller": "tel:+12125550101", "started_at": 1002.0,
            "ended_at": 1003.0, "path": [], "prompts": [], "inputs": [],
            "outcome": "not-answered", "error": "User busy", "call_id": "x1", "node": "",
        })  # fmt: skip
        await store.close()

    asyncio.run(fill())
    wide = {"COLUMNS": "200"}
    shown = CliRunner().invoke(calls, ["list", "--db", str(db)], env=wide)
    assert shown.exit_code == 0, shown.output
    assert "+1 (555) 000-1013" in shown.output and "+1 (555) 000-1000" in shown.output
    assert "+1 (212) 555-0101" in shown.output
    assert "tel:" not in shown.output and "vtn:" not in shown.output
    assert "not-answered" not in shown.output
    busy = CliRunner().invoke(calls, ["list", "--db", str(db), "--outcome", "busy", "--json"])
    assert sorted(e["id"] for e in json.loads(busy.output)) == ["c1", "f1"]
