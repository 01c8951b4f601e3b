"""``ivrbot campaign``: create from the example, bad rows by line, list, report, DNC, and
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivrbot.campaign.campaign import State
from ivrbot.campaign.scheduler import clock_for
from ivrbot.campaign.store import CampaignStore
from ivrbot.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "campaigns" / "reminder.py")
CSV_HEADER = (
    "campaign,contact_id,contact_name,number,timezone,attempt,started_at_utc,"
    "started_at_local,ended_at_utc,ended_at_local,outcome,next_retry_utc,next_retry_local,"
    "final,answered_by,flow_result,recording,call_id"
)
NO_GATEWAY = "http://127.0.0.1:9"


def run(*args: str) -> tuple[int, str, str]:
    if args[0] == "create":
        args = (*args, "--flows-dir", str(ROOT / "flows"))
    result = CliRunner().invoke(main, ["campaign", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.unit
def test_the_example_campaign_is_created_with_its_bad_rows_reported(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    code, out, err = run("create", str(ROOT / "campaigns" / "reminder.py"), "--db", db)
    assert code == 0, err
    assert "6 contacts, 1 bad rows, 1 duplicates merged" in out
    assert "reminder_contacts.csv:9: '555-01' has the wrong number of digits" in err
    assert "reminder_contacts.csv:8: same number as line 2 (merged)" in err
    code, out, _ = run("status", "reminder-demo", "--json", "--db", db)
    data = json.loads(out)
    assert code == 0 and data.pop("activity")["why"] == "not-started" and data == {
        "name": "reminder-demo", "flow": "reminder", "state": "created", "total": 6,
        "done": 0, "in_progress": 0, "outcomes": {}, "abandon_ratio": 0.0,
    }  # fmt: skip
    code, out, _ = run("list", "--db", db)
    assert code == 0 and "reminder-demo" in out and "0/6" in out
    code, out, _ = run("report", "reminder-demo", "--csv", "--db", db)
    assert code == 0 and out == CSV_HEADER + "\n"  # no attempt yet
    # created twice: one line saying so
    code, _, err = run("create", str(ROOT / "campaigns" / "reminder.py"), "--db", db)
    assert code == 1 and err.strip().splitlines() == [
        "ivrbot: error: a campaign named 'reminder-demo' exists already (to create it "
        "again: ivrbot campaign delete reminder-demo)"
    ]


@pytest.mark.unit
def test_do_not_call_lists(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    assert run("dnc", "add", "(212) 555-0101", "1-800-FLOWERS", "--db", db)[0] == 0
    csv = tmp_path / "dnc.csv"
    csv.write_text("number\n+1 310 555 0104\nnot a number\n")
    code, out, err = run("dnc", "import", str(csv), "--campaign", "spring", "--db", db)
    assert code == 0 and "1 added to the spring" in out and "dnc.csv:3:" in err
    assert run("dnc", "list", "--db", db)[1].split() == ["+12125550101", "+18003569377"]
    assert run("dnc", "list", "--campaign", "spring", "--db", db)[1].split() == ["+13105550104"]
    assert run("dnc", "remove", "+1 212 555 0101", "--db", db)[0] == 0
    code, _, err = run("dnc", "remove", "+1 212 555 0101", "--db", db)
    assert code == 1 and "is not on the global do-not-call list" in err


@pytest.mark.contract
def test_errors_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    CampaignStore(db)  # a store without that campaign
    code, _, err = run("status", "autumn", "--db", db)
    assert (
        code == 1
        and err.strip() == "ivrbot: error: no campaign named 'autumn' (ivrbot campaign list)"
    )
    code, _, err = run("start", "autumn", "--gateway", "http://127.0.0.1:9")
    assert code == 1 and len(err.strip().splitlines()) == 1 and "no ivrbot run at" in err
    wrong_flow = tmp_path / "wrong_flow.py"
    wrong_flow.write_text(
        "from ivrbot.campaign.campaign import Campaign\ncampaign = Campaign('x', 'remindr', contacts='c.csv')\n"
    )
    code, _, err = run("create", str(wrong_flow), "--db", db)
    assert code == 1 and "no flow named 'remindr'" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from ivrbot.campaign.campaign import Campaign\ncampaign = Campaign('x', 'reminder', machine='shout')\n"
    )
    code, _, err = run("create", str(bad), "--db", db)
    assert code == 1 and "machine='shout'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.unit
def test_status_and_report_on_the_clock_ivrbot_run_uses(tmp_path: Path) -> None:
    """ivrbot run ran the campaign on a fast clock from Monday 06:00 in New York: status,
    in another process, says why nothing is dialled and until when, on that clock."""
    db = str(tmp_path / "ivrbot.db")
    assert run("create", EXAMPLE, "--db", db)[0] == 0
    store = CampaignStore(db)
    clock_for(store, "60@2026-03-09T10:00:00+00:00")  # as ivrbot run saves it
    store.set_state("reminder-demo", State.RUNNING)
    code, out, _ = run("status", "reminder-demo", "--db", db)
    assert (
        code == 0
        and "now: outside calling hours until 08:00 callee-local "
        "(America/New_York) / 12:00 UTC on Mon 2026-03-09"
        in " ".join(out.split())
    )
    code, out, _ = run("report", "reminder-demo", "--db", db)
    words = " ".join(out.split())
    assert code == 0 and words.startswith("campaign reminder-demo (flow reminder, running)")
    assert "contacts │ 6" in words and "(no attempt yet)" in words and "now: outside" in words
    code, out, _ = run("report", "reminder-demo", "--json", "--db", db)
    data = json.loads(out)
    assert (data["attempts"], data["never_attempted"], data["activity"]["next_call_at"]) == (
        0, 6, "2026-03-09T12:00:00+00:00",
    )  # fmt: skip
    store.close()


@pytest.mark.contract
def test_delete_and_create_again_without_ivrbot_run(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    assert run("create", EXAMPLE, "--db", db)[0] == 0
    store = CampaignStore(db)
    store.dnc_add(["+12125550101"], "reminder-demo", "opted out")
    store.set_state("reminder-demo", State.RUNNING)
    code, _, err = run("delete", "reminder-demo", "--gateway", NO_GATEWAY, "--db", db)
    assert (code, err) == (1, "ivrbot: error: campaign reminder-demo is running: cancel it "
                              "first (ivrbot campaign cancel reminder-demo) or delete it with "
                              "--force\n")  # fmt: skip
    code, out, _ = run("delete", "reminder-demo", "--force", "--gateway", NO_GATEWAY, "--db", db)
    assert (code, out) == (0, f"campaign reminder-demo deleted from {db} (no ivrbot run "
                              f"answers at {NO_GATEWAY}): 6 contacts, 0 attempts\n")  # fmt: skip
    code, _, err = run("status", "reminder-demo", "--db", db)
    assert err == "ivrbot: error: no campaign named 'reminder-demo' (ivrbot campaign list)\n"
    code, out, _ = run("create", EXAMPLE, "--db", db)
    assert code == 0 and "campaign reminder-demo created" in out
    assert run("report", "reminder-demo", "--json", "--db", db)[0] == 0
    # an opt-out outlives the campaign it was made in
    assert store.dnc_numbers("reminder-demo") == ["+12125550101"]
    code, _, err = run("delete", "autumn", "--gateway", NO_GATEWAY, "--db", db)
    assert (code, err) == (1, "ivrbot: error: no campaign named 'autumn' (ivrbot campaign list)\n")
    store.close()


@pytest.mark.unit
def test_bad_contact_files_and_unknown_campaigns_are_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    no_number = tmp_path / "people.csv"
    no_number.write_text("phone_no,name\n+1 212 555 0101,Pat\n")
    code, _, err = run("create", EXAMPLE, "--contacts", str(no_number), "--db", db)
    assert (code, err) == (1, f"ivrbot: error: {no_number}: the first line must name the "
                              "columns, one of them 'number' (got phone_no, name)\n")  # fmt: skip
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("number,name\n+1 212 555 0101,Jos\xe9\n".encode("latin-1"))
    code, _, err = run("create", EXAMPLE, "--contacts", str(latin1), "--db", db)
    assert code == 1 and len(err.splitlines()) == 1 and "not UTF-8 text" in err
    CampaignStore(db).close()  # a store without that campaign
    for command in (["report", "autumn"], ["report", "autumn", "--csv"], ["status", "autumn"]):
        code, _, err = run(*command, "--db", db)
        assert (code, err) == (
            1,
            "ivrbot: error: no campaign named 'autumn' (ivrbot campaign list)\n",
        )
