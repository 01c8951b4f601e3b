"""``ivrbot campaign``: create from the example, bad rows by line, list, report, DNC, and
one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ivrbot.campaign.store import CampaignStore
from ivrbot.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    if args[0] == "create":
        args = (*args, "--flows-dir", str(ROOT / "flows"))
    result = CliRunner().invoke(main, ["campaign", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_example_campaign_is_created_with_its_bad_rows_reported(tmp_path: Path) -> None:
    db = str(tmp_path / "ivrbot.db")
    code, out, err = run("create", str(ROOT / "campaigns" / "reminder.py"), "--db", db)
    assert code == 0, err
    assert "6 contacts, 1 bad rows, 1 duplicates merged" in out
    assert "reminder_contacts.csv:9: '555-01' has the wrong number of digits" in err
    assert "reminder_contacts.csv:8: same number as line 2 (merged)" in err
    code, out, _ = run("status", "reminder-demo", "--json", "--db", db)
    assert code == 0 and json.loads(out) == {
        "name": "reminder-demo", "flow": "reminder", "state": "created", "total": 6,
        "done": 0, "in_progress": 0, "outcomes": {}, "abandon_ratio": 0.0,
    }  # fmt: skip
    code, out, _ = run("list", "--db", db)
    assert code == 0 and "reminder-demo" in out and "0/6" in out
    code, out, _ = run("report", "reminder-demo", "--csv", "--db", db)
    assert code == 0 and out.startswith("contact_id,number,attempt,")
    # created twice: one line saying so
    code, _, err = run("create", str(ROOT / "campaigns" / "reminder.py"), "--db", db)
    assert code == 1 and err.strip().splitlines() == [
        "ivrbot: error: a campaign named 'reminder-demo' exists already"
    ]


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
