"""CSV import: normalised numbers, zones, every bad row with its line and reason, duplicates
merged and reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrbot.campaign.campaign import CampaignError
from ivrbot.campaign.contacts import read_contacts

pytestmark = pytest.mark.unit

CSV = """number,name,timezone,appointment
+1 (212) 555-0101,Pat,,9am
1-800-FLOWERS,Flo,,10am
312 555 0102,Cy,America/Chicago,11am
not a number,Bad,,noon
+1 212 555 01,Short,,1pm
212.555.0101,Pat again,,2pm
+1 310 555 0103,Zed,Mars/Olympus,3pm
+1 310 555 0104,Lee,,4pm,extra

+44 20 7946 0958,Lon,,5pm
"""


def test_rows_become_contacts_and_every_problem_is_reported() -> None:
    result = read_contacts(CSV)
    assert [(c.number, c.zone) for c in result.contacts] == [
        ("+12125550101", "America/New_York"),  # zone from the number
        ("+13125550102", "America/Chicago"),  # zone from the column
        ("+442079460958", "Europe/London"),
    ]
    pat = result.contacts[0]
    assert pat.name == "Pat" and pat.vars == {"appointment": "9am"} and pat.line == 2
    lines = {line: reason for line, reason in result.errors}
    assert "1-800-FLOWERS" not in lines[3] and "+18003569377" in lines[3]  # keypad letters
    assert "add a 'timezone' column" in lines[3]  # a toll-free number has no one zone
    assert "not a phone number" in lines[5]
    assert "wrong number of digits" in lines[6]
    assert "unknown time zone 'Mars/Olympus'" in lines[8]
    assert "5 columns, the header has 4" in lines[9]
    assert result.duplicates == [(7, 2)]  # 212.555.0101 is Pat's number
    # nothing silently dropped: every data line is a contact, an error or a duplicate
    accounted = {c.line for c in result.contacts} | set(lines) | {d for d, _ in result.duplicates}
    assert accounted == {2, 3, 4, 5, 6, 7, 8, 9, 11}


def test_a_file_without_a_number_column_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("name,phone number\nPat,2125550101\n")
    with pytest.raises(CampaignError, match="one of them 'number'"):
        read_contacts(path)
    with pytest.raises(CampaignError, match="cannot read the contact file"):
        read_contacts(tmp_path / "missing.csv")
