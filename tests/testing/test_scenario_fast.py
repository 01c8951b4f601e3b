"""``ivrbot flows test --fast``: the scenario files on the test kit, no media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ivrbot.cli.main import main
from ivrbot.testing.scenario_fast import run_scenarios_fast
from ivrbot.testing.scenario_file import load_scenario, scenario_files

pytestmark = pytest.mark.unit

BANK_AGENT = """
description = "2 for an agent"
[[actions]]
press = "2"
[expect]
outcome = "transferred"
"""
BANK_WRONG = """
description = "a wrong key, expected to be taken"
[[actions]]
hear = true
contains = "press 3"
[[actions]]
press = "9"
[expect]
path = ["defaults", "menu", "account"]
"""


def test_the_example_scenarios_pass_on_the_kit() -> None:
    scenarios = [load_scenario(f) for f in scenario_files(Path("flows/scenarios"))]
    results = run_scenarios_fast(scenarios)
    assert len(results) == 9 and [r.failures for r in results if r.failures] == []
    survey = next(r for r in results if r.scenario.name == "survey.full")
    assert survey.values["rating"] == "4" and survey.values["recommend"] == "no"


def test_what_differs_is_reported_and_a_transfer_is_not_run_fast(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "bank.agent.toml").write_text(BANK_AGENT, encoding="utf-8")
    (folder / "bank.wrong.toml").write_text(BANK_WRONG, encoding="utf-8")
    out = CliRunner().invoke(
        main, ["flows", "test", str(folder), "--flows-dir", "flows", "--fast", "--json"]
    )
    assert out.exit_code == 1, out.output
    report = json.loads(out.output)
    assert report["failed"] == 2
    agent, wrong = report["scenarios"]
    assert agent["failures"] == [
        "cannot run on the test kit: flow 'bank': step 'agent' (Transfer to agent@ivrbot.local) "
        "needs the target's answer: add .transfer_answers(True) (it answers) or "
        ".transfer_answers(False) (no answer) (run it without --fast)"
    ]
    assert wrong["failures"][0].startswith("action 1 (hear): no prompt contains 'press 3'")
    assert wrong["failures"][1] == (
        'path: expected ["defaults", "menu", "account"], got ["defaults", "menu", "bye"]'
    )
