"""Scenario files and ``ivrbot flows test``: the example flows' scenarios pass over real media,
a wrong expectation fails with expected vs got, a bad file is one line naming it.

The real-time tests run the command in a subprocess, as a user does: a gateway on
127.0.0.1, bots, simulated callers and callees, espeak-ng and the Korean vosk model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ivrbot.flow.loader import import_flow_file
from ivrbot.flow.media_steps import RecordResult
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.steps import Answer
from ivrbot.testing.scenario import find_scenario_flow
from ivrbot.testing.scenario_file import (
    ScenarioError,
    check_expectations,
    load_scenario,
    plain,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "survey.full", "voicemail.closed", "voicemail.open",
    "reminder.confirm", "reminder.opt-out", "reminder.machine",
    "conference.join", "conference.bad-pin", "bank.wrong-key",
}  # fmt: skip
HELLO = """\
from ivrbot.flow import Flow, Hangup
flow = Flow("hello", number="5550001090")
flow.add(Hangup("bye", "Hello and goodbye."))
"""


def flows_test(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "test", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


# over real media ---------------------------------------------------------------------------
@pytest.mark.e2e
def test_the_example_scenarios_pass() -> None:
    proc = flows_test("flows/scenarios", "--json")
    report = json.loads(proc.stdout)
    for s in report["scenarios"]:
        print(f"{s['scenario']:<20} {s['seconds']:5.1f} s  {'; '.join(s['failures'])}")
    assert EXAMPLES <= {s["scenario"] for s in report["scenarios"]}
    failed = {s["scenario"]: s["failures"] for s in report["scenarios"] if not s["passed"]}
    assert not failed and proc.returncode == 0, (failed, proc.stderr[-2000:])
    by_name = {s["scenario"]: s for s in report["scenarios"]}
    survey = by_name["survey.full"]
    assert survey["vars"]["rating"] == "4" and survey["vars"]["recommend"] == "no"
    assert [i["step"] for i in survey["record"]["inputs"]] == [
        "q1_rating", "q2_recommend", "q3_comment",
    ]  # fmt: skip
    assert by_name["voicemail.closed"]["record"]["recordings"]
    assert by_name["reminder.machine"]["vars"]["beep"] == "true"
    assert by_name["conference.join"]["vars"]["enter"] == "joined"  # the Conference result
    assert {e["party"] for e in survey["events"]} == {"caller", "bot"}


@pytest.mark.e2e
def test_a_wrong_expectation_fails_with_expected_and_got(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "hello.ok.toml").write_text(
        '[[actions]]\nhear = true\ncontains = "goodbye"\n'
        '[expect]\npath = ["bye"]\noutcome = "completed"\n'
    )
    (scenarios / "hello.wrong.toml").write_text(
        '[[actions]]\nhear = true\n[expect]\npath = ["greet", "bye"]\nvars = { greeted = true }\n'
    )
    proc = flows_test(str(scenarios), timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("PASS  hello.ok"), proc.stdout
    assert lines[1].startswith("FAIL  hello.wrong") and "hello.wrong.toml" in lines[1]
    assert 'path: expected ["greet", "bye"], got ["bye"]' in lines[2]
    assert "vars.greeted: expected 'true', got unset" in lines[3]
    assert lines[-1].startswith("1 passed, 1 failed")
    assert "Traceback" not in proc.stderr


@pytest.mark.contract
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "hello.ok.toml").write_text("[[actions]]\nhear = true\n")
    bad = tmp_path / "hello.bad.toml"
    bad.write_text("[[actions]]\nhear = \n")
    proc = flows_test(str(tmp_path), timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""  # nothing ran
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not valid TOML" in lines[0], lines
    assert "line 2" in lines[0]


# reading files (no calls) ---------------------------------------------------------------------
def write(tmp_path: Path, text: str, name: str = "survey.case.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.unit
def test_a_scenario_file_read() -> None:
    scenario = load_scenario(ROOT / "flows" / "scenarios" / "voicemail.closed.toml")
    assert scenario.flow == "voicemail" and scenario.name == "voicemail.closed"
    assert scenario.direction == "inbound" and scenario.env == {"IVRBOT_NOW": "2025-01-04T10:30"}
    assert [a.kind for a in scenario.actions] == ["hear", "say", "press", "hear"]
    assert scenario.actions[0].contains == "We are closed" and scenario.actions[1].voice == "ko"
    assert scenario.expect.vars == {"open": "false", "message": "recorded"}
    machine = load_scenario(ROOT / "flows" / "scenarios" / "reminder.machine.toml")
    assert machine.direction == "outbound" and machine.callee == "machine"
    assert find_scenario_flow(machine).name == "reminder"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("flows = 'x'\n", "unknown key 'flows'"),
        ("[[actions]]\nhear = true\npress = '1'\n", "action 1: give exactly one of"),
        ("[[actions]]\nhear = false\n", "action 1: write hear = true"),
        ("[[actions]]\npress = 'x'\n", "action 1: press takes keypad keys"),
        ("[[actions]]\nwait = -1\n", "action 1: wait must be a positive number"),
        ("[[actions]]\nsay = 'hi'\ncontains = 'x'\n", "action 1: unknown key 'contains'"),
        ("direction = 'sideways'\n", "direction must be 'inbound' or 'outbound'"),
        ("callee = 'robot'\n", "callee must be 'human' or 'machine'"),
        ("[expect]\npaths = []\n", "expect: unknown key 'paths'"),
        ("[expect]\nrecordings = -1\n", "expect: recordings must be a count"),
        ("[expect]\ninputs = [{ digits = '1' }]\n", "inputs 1: unknown key 'digits'"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_file(
    tmp_path: Path, text: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message


@pytest.mark.unit
def test_press_may_be_a_number_and_the_flow_defaults_to_the_file_name(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, "[[actions]]\npress = 1\n", "welcome.x.toml"))
    assert scenario.flow == "welcome" and scenario.actions[0].value == "1"


@pytest.mark.unit
def test_an_unknown_flow_names_the_folder(tmp_path: Path) -> None:
    (tmp_path / "hello.py").write_text(HELLO)
    scenario = load_scenario(write(tmp_path, "", "nobody.case.toml"))
    with pytest.raises(Exception, match=r"no flow named 'nobody' in"):
        find_scenario_flow(scenario)
    scenario = load_scenario(write(tmp_path, "flow = 'hello'\n", "other.case.toml"))
    assert find_scenario_flow(scenario).name == "hello"


# comparing (no calls) -------------------------------------------------------------------------
def record(**fields: Any) -> FlowRecord:
    out = FlowRecord("survey", "sip:caller@ivrbot.local")
    for key, value in fields.items():
        setattr(out, key, value)
    return out


def expect_of(tmp_path: Path, text: str) -> Any:
    return load_scenario(write(tmp_path, "[expect]\n" + text)).expect


@pytest.mark.unit
def test_expectations_met(tmp_path: Path) -> None:
    expect = expect_of(
        tmp_path,
        'path = ["a", "b", "..."]\nprompts_include = "thank"\noutcome = "completed"\n'
        'inputs = [{ outcome = "dtmf", value = 4 }, { step = "c", outcome = ["speech", '
        '"nomatch"] }]\nvars = { rating = 4, open = false, q = "no", message = "recorded" }\n'
        "recordings = 1\n",
    )
    got = record(
        path=["a", "b", "c"], prompts=["Thank you."], outcome="completed",
        inputs=[{"step": "a", "outcome": "dtmf", "value": "4"},
                {"step": "c", "outcome": "nomatch", "value": ""}],
        recordings=["/tmp/x.wav"],
    )  # fmt: skip
    values = {"rating": 4, "open": False, "q": Answer("speech", "no"),
              "message": RecordResult("recorded", "/tmp/x.wav", 1.0)}  # fmt: skip
    assert check_expectations(expect, got, values) == []


@pytest.mark.unit
def test_expectations_missed_say_expected_and_got(tmp_path: Path) -> None:
    expect = expect_of(
        tmp_path,
        'path = ["a", "x", "..."]\nprompts_include = ["Welcome"]\noutcome = "completed"\n'
        'inputs = [{ outcome = "dtmf" }]\nvars = { rating = 4 }\nrecordings = 1\n',
    )
    got = record(path=["a", "b"], prompts=["Hi."], outcome="error", error="step b: boom")
    failures = check_expectations(expect, got, {"rating": None})
    assert failures == [
        'path: expected to start with ["a", "x"], got ["a", "b"]',
        """prompts_include: no prompt contains 'Welcome'; the bot said ["Hi."]""",
        "inputs: expected [{outcome=dtmf}], got []",
        "outcome: expected 'completed', got 'error' (step b: boom)",
        "vars.rating: expected '4', got 'none'",
        "recordings: expected 1, got 0",
    ]


@pytest.mark.unit
def test_plain_values() -> None:
    assert plain(True) == "true" and plain(None) == "none" and plain(1.5) == "1.5"
    assert plain(Answer("noinput")) == "noinput" and plain(Answer("dtmf", "12")) == "12"
    assert plain(datetime(2025, 1, 6, 9, 30)) == "2025-01-06T09:30:00"


# the voicemail flow's clock -------------------------------------------------------------------
@pytest.mark.unit
def test_the_voicemail_clock_and_hours() -> None:
    import_flow_file(ROOT / "flows" / "voicemail.py")
    voicemail = sys.modules["ivrbot_flows.voicemail"]
    assert voicemail.hours_text() == "Monday to Friday, 9 AM to 5 PM"
    assert voicemail.is_open(voicemail.now({"IVRBOT_NOW": "2025-01-06T16:59"}))  # a Monday
    assert not voicemail.is_open(voicemail.now({"IVRBOT_NOW": "2025-01-06T17:00"}))
    assert not voicemail.is_open(voicemail.now({"IVRBOT_NOW": "2025-01-04T10:00"}))  # Saturday
    with pytest.raises(ValueError, match="IVRBOT_NOW='soon' is not an ISO 8601 time"):
        voicemail.now({"IVRBOT_NOW": "soon"})
