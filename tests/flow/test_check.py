"""ivrbot flows check and graph: each class of mistake is caught; the picture has every step."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivrbot.flow import Ask, Flow, FlowCall, FlowError, Goto, Hangup, Menu, Say
from ivrbot.flow.check import check_flow
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.loader import load_flow_file
from tests.flow.pictures import step_ids

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "from ivrbot.flow import Ask, Flow, Goto, Hangup, Say\nflow = Flow('t', number='5550001001')\n"
)


def messages(flow: Flow) -> list[str]:
    return [str(p) for p in check_flow(flow) if p.severity == "error"]


def make(*steps: object) -> Flow:
    flow = Flow("t", number="5550001001")
    flow.add(*steps)  # type: ignore[arg-type]
    return flow


@pytest.mark.unit
def test_a_clean_flow_has_no_problem() -> None:
    assert check_flow(make(Say("hi", "Hello"), Hangup("bye"))) == []


@pytest.mark.unit
def test_unknown_target() -> None:
    assert messages(make(Say("hi", "Hello", next="nowhere"), Hangup("bye"))) == [
        "error: step 'hi': goes to unknown step 'nowhere' (next)",
        "error: step 'bye': unreachable from the start step 'hi'",
    ]


@pytest.mark.unit
def test_unreachable_step() -> None:
    found = messages(make(Say("hi", "Hello", next="bye"), Say("lost", "Hm"), Hangup("bye")))
    assert found == ["error: step 'lost': unreachable from the start step 'hi'"]


@pytest.mark.unit
def test_missing_prompt() -> None:
    assert messages(make(Say("hi", " "), Hangup("bye"))) == [
        "error: step 'hi': Say has no text to speak"
    ]
    assert "Ask has no prompt" in messages(make(Ask("a", ""), Hangup("bye")))[0]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("step", "fragment"),
    [
        (Ask("a", "Hi", digits=0), "nothing to ask"),
        (Ask("a", "Hi", digits=-1), "digits must be 0 or more"),
        (Ask("a", "Hi", timeout_s=0), "timeouts must be positive"),
        (Ask("a", "Hi", finish_key="x"), "not a keypad key"),
        (Ask("a", "Hi", choices={}), "choices is empty"),
        (Ask("a", "Hi", digits=4, min_digits=5), "min_digits must be from 1 to digits (4)"),
        (Menu("a", "Hi", options={}, no_input="bye"), "Menu has no options"),
        (Menu("a", "Hi", options={"x": "bye"}), "option 'x' can be neither pressed nor said"),
        (Menu("a", "Hi", options={"12": "bye"}), "option '12' can be neither pressed nor said"),
    ],
)
def test_bad_options(step: Ask, fragment: str) -> None:
    found = messages(make(step, Hangup("bye")))
    assert len(found) == 1 and fragment in found[0]


@pytest.mark.unit
def test_menu_options_are_targets_and_a_word_may_pick_one() -> None:
    menu = Menu("m", "One or two?", choices={"하나": "1"}, options={"1": "one", "2": "two"})
    assert messages(make(menu, Say("one", "One"), Hangup("bye"))) == [
        "error: step 'm': goes to unknown step 'two' (option 2)"
    ]
    spoken = Menu("m", "Say it", digits=0, choices={"하나": "one"}, options={"one": "bye"})
    assert messages(make(spoken, Hangup("bye"))) == []


@pytest.mark.unit
def test_python_step_without_declared_targets_is_a_warning() -> None:
    flow = make(Say("hi", "Hello"))

    @flow.step("route")
    async def route(call: FlowCall) -> str:
        return "bye"

    flow.add(Hangup("bye"))
    problems = check_flow(flow)
    assert [p.severity for p in problems] == ["warning"] and "goes_to" in problems[0].message


@pytest.mark.unit
def test_goto_loops_are_fine() -> None:
    assert messages(make(Say("hi", "Hello"), Goto("again", "hi"))) == []


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


@pytest.mark.contract
def test_cli_check_passes_the_examples_and_fails_a_bad_flow(tmp_path: Path) -> None:
    ok = run_check(ROOT / "flows")
    assert ok.returncode == 0, ok.stderr
    assert "welcome" in ok.stdout and "ok" in ok.stdout
    (tmp_path / "bad.py").write_text(HEADER + "flow.add(Say('hi', 'Hello', next='gone'))\n")
    (tmp_path / "broken.py").write_text("this is not python(\n")
    bad = run_check(tmp_path)
    assert bad.returncode == 1
    assert "bad.py: flow 't': error: step 'hi': goes to unknown step 'gone'" in bad.stderr
    assert "broken.py:1: syntax error" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.unit
def test_unknown_event_is_an_error_at_load(tmp_path: Path) -> None:
    path = tmp_path / "ev.py"
    path.write_text(HEADER + "flow.add(Hangup('bye'))\n@flow.on('call:ringing')\ndef f(e): pass\n")
    with pytest.raises(Exception, match="unknown event 'call:ringing'"):
        load_flow_file(path)


@pytest.mark.contract
def test_graph_is_valid_svg_with_every_step() -> None:
    flow = load_flow_file(ROOT / "flows" / "welcome.py")
    assert step_ids(svg(flow)) == {f"step-{name}" for name in flow.steps}
    text = mermaid(flow)
    assert text.startswith("flowchart TD") and text.count("-->") >= len(flow.steps)


@pytest.mark.contract
def test_cli_graph_writes_svg(tmp_path: Path) -> None:
    out = tmp_path / "w.svg"
    proc = subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "graph", "welcome", "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ET.fromstring(out.read_text())


@pytest.mark.unit
def test_the_start_step_is_explicit_or_the_first_added() -> None:
    first = make(Say("hi", "Hello", next="bye"), Hangup("bye"))
    assert first.start == "hi" and check_flow(first) == []
    flow = Flow("t", number="5550001001", start="hi")
    flow.add(Hangup("bye"), Say("hi", "Hello", next="bye"))
    assert flow.start == "hi" and check_flow(flow) == []
    flow = Flow("t", number="5550001001", start="bye")
    flow.add(Say("hi", "Hello"), Hangup("bye"))
    assert messages(flow) == ["error: step 'hi': unreachable from the start step 'bye'"]


@pytest.mark.contract
def test_an_unknown_start_step_is_one_clear_error(tmp_path: Path) -> None:
    flow = Flow("t", number="5550001001", start="hello")
    flow.add(Say("hi", "Hello"), Hangup("bye"))
    assert messages(flow) == ["error: start names unknown step 'hello' (steps: 'hi', 'bye')"]
    path = tmp_path / "start.py"
    path.write_text(
        HEADER.replace("number='5550001001'", "number='5550001001', start='hello'")
        + "flow.add(Say('hi', 'Hello'), Hangup('bye'))\n"
    )
    proc = run_check(path)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"{path}: flow 't': error: start names unknown step 'hello' (steps: 'hi', 'bye')"
    ]
    with pytest.raises(FlowError, match="start names unknown step 'hello'"):
        load_flow_file(path)
