"""Where a miss goes, before a call: ``edges()`` and the picture show misses going to their
real targets (a "give up" end when none), and ``flows check`` reports a route by which a
no-input or no-match at a Menu could reach one of its options' steps."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ivrbot.flow import Ask, Flow, FlowCall, Goto, Hangup, Menu, Say
from ivrbot.flow.check import check_flow, flow_edges
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.steps import GIVE_UP, Edge, Step
from tests.flow.pictures import SVG

ROOT = Path(__file__).resolve().parents[2]
CONFIRM = "Press 1 to place the order, or 2 to start over."
PIZZA = """\
from ivrbot.flow import Flow, Hangup, Menu, Say
flow = Flow("pizza", number="5550001020")
flow.add(
    Menu("size", "Small: 1. Large: 2.", options={"1": "confirm", "2": "confirm"}, no_input="bye"),
    Menu("confirm", "Press 1 to place the order, or 2 to start over.",
         options={"1": "ordered", "2": "size"}, no_input="bye"{extra}),
    {sorry}Hangup("ordered", "Your pizza is on its way."),
    Hangup("bye", "Goodbye."),
)
"""


SORRY = 'Say("sorry", "Sorry."),\n    '


def pizza(*extra_steps: Step, **confirm: Any) -> Flow:
    flow = Flow("pizza", number="5550001020")
    flow.add(
        Menu(
            "size", "Small: 1. Large: 2.", options={"1": "confirm", "2": "confirm"}, no_input="bye"
        ),
        Menu("confirm", CONFIRM, options={"1": "ordered", "2": "size"}, no_input="bye", **confirm),
        *extra_steps,
        Hangup("ordered", "Your pizza is on its way."),
        Hangup("bye", "Goodbye."),
    )
    return flow


def found(flow: Flow) -> list[str]:
    return [str(p) for p in check_flow(flow)]


# edges and the picture -----------------------------------------------------------------------
@pytest.mark.unit
def test_a_menus_misses_go_to_their_targets_or_give_up_never_to_next() -> None:
    flow = pizza()
    confirm = [e for e in flow_edges(flow) if e.source == "confirm"]
    assert confirm == [
        Edge("confirm", "ordered", "option 1"),
        Edge("confirm", "size", "option 2"),
        Edge("confirm", "bye", "no input"),
        Edge("confirm", GIVE_UP, "no match"),
    ]
    assert found(flow) == []  # the issue's flow: a wrong key now gives up, nothing to report


@pytest.mark.unit
def test_an_asks_next_is_for_an_answer_and_its_misses_go_elsewhere() -> None:
    one_key = Ask("k", "Press a key.", next="bye")  # any key is an answer: no no-match
    assert one_key.edges(None) == [Edge("k", "bye", "next"), Edge("k", GIVE_UP, "no input")]
    pin = Ask("pin", "PIN, then pound.", digits=4, no_input="bye", no_match="again")
    assert pin.edges("thanks") == [
        Edge("pin", "thanks", "next"),
        Edge("pin", "bye", "no input"),
        Edge("pin", "again", "no match"),  # '#' alone is too short
    ]
    words = Ask("w", "Yes or no?", digits=0, choices=["yes", "no"], next="bye", no_input="bye")
    assert words.edges(None)[-1] == Edge("w", GIVE_UP, "no match")


@pytest.mark.contract
def test_the_picture_has_a_give_up_end_for_the_misses_nobody_takes() -> None:
    flow = pizza()
    root = ET.fromstring(svg(flow))
    groups = {g.get("id"): g for g in root.iter(f"{SVG}g")}
    end = groups["give-up"]
    assert [t.text for t in end.iter(f"{SVG}text")] == [
        "give up",
        "Sorry, I could not understand. Go…",
    ]
    miss = groups["edge-confirm-give-up"]
    assert [t.text for t in miss.iter(f"{SVG}text")] == ["no match"]
    assert "edge-confirm-ordered" in groups and "edge-confirm-bye" in groups
    assert [t.text for t in groups["edge-confirm-bye"].iter(f"{SVG}text")] == ["no input"]
    text = mermaid(flow)
    assert 'giveup(["<i>give up</i> Sorry, I could not' in text
    assert "s1 -- no match --> giveup" in text
    # a flow whose every miss has a step has no give-up end
    routed = Flow("routed", number="5550001020")
    routed.add(
        Menu("confirm", CONFIRM, options={"1": "ordered"}, no_input="bye", no_match="bye"),
        Hangup("ordered", "Your pizza is on its way."),
        Hangup("bye", "Goodbye."),
    )
    assert "give-up" not in {g.get("id") for g in ET.fromstring(svg(routed)).iter(f"{SVG}g")}
    assert "giveup" not in mermaid(routed)


# flows check: miss routes ----------------------------------------------------------------------
@pytest.mark.unit
def test_a_miss_that_falls_through_to_an_options_step_is_an_error() -> None:
    flow = pizza(Say("sorry", "Sorry, that is not a choice."), no_match="sorry")
    assert found(flow) == [
        "error: a no-match at 'confirm' reaches 'ordered' (option 1) via confirm -> sorry -> "
        "ordered: a caller's mistake would act for them; send the miss to a step that asks "
        "again or ends the call, or leave no_match out (asked again, then an apology and a "
        "hang-up)"
    ]


@pytest.mark.unit
def test_a_miss_straight_to_an_options_step_and_both_kinds_of_miss() -> None:
    flow = Flow("pizza", number="5550001020")
    flow.add(
        Menu(
            "confirm",
            CONFIRM,
            options={"1": "ordered", "3": "ordered", "2": "bye"},
            no_input="ordered",
            no_match="ordered",
        ),
        Hangup("ordered", "Your pizza is on its way."),
        Hangup("bye", "Goodbye."),
    )
    (problem,) = check_flow(flow)
    assert problem.severity == "error"
    assert problem.message.startswith(
        "a no-input or no-match at 'confirm' reaches 'ordered' (options 1, 3) via "
        "confirm -> ordered:"
    )
    assert "leave no_input/no_match out" in problem.message


@pytest.mark.unit
def test_asking_again_is_a_legit_loop() -> None:
    again = pizza(Say("sorry", "Sorry, that is not a choice.", next="confirm"), no_match="sorry")
    assert found(again) == []
    goto = pizza(Goto("sorry", "confirm"), no_match="sorry")
    assert found(goto) == []
    to_itself = pizza(no_match="confirm")
    assert found(to_itself) == []


@pytest.mark.unit
def test_an_option_chosen_at_another_menu_is_the_callers_choice() -> None:
    really = Menu("really", "Place the order? Press 1.", options={"1": "ordered"},
                  no_input="bye", no_match="bye")  # fmt: skip
    assert found(pizza(really, no_match="really")) == []
    # but that menu's own misses are followed
    careless = Menu("careless", "Place the order? Press 1.", options={"1": "ordered"},
                    no_input="bye", no_match="ordered")  # fmt: skip
    problems = [str(p) for p in check_flow(pizza(careless, no_match="careless"))]
    assert problems[1].startswith(
        "error: a no-match at 'careless' reaches 'ordered' (option 1) via careless -> ordered"
    )
    assert problems[0].startswith(
        "warning: a no-match at 'confirm' may reach 'ordered' (option 1) via "
        "confirm -> careless -> ordered:"
    )


@pytest.mark.unit
def test_a_route_through_python_or_to_a_step_that_asks_is_a_warning() -> None:
    flow = pizza(no_match="decide")

    @flow.step("decide", goes_to=["ordered", "bye"])
    async def decide(call: FlowCall) -> str:
        return "bye"

    assert found(flow) == [
        "warning: a no-match at 'confirm' may reach 'ordered' (option 1) via confirm -> "
        "decide -> ordered: make sure a caller who did not choose it cannot get it that way"
    ]
    start_over = pizza(no_match="size")  # 'size' is option 2, and it asks the caller
    assert [(p.severity, p.message.split(":")[0]) for p in check_flow(start_over)] == [
        ("warning", "a no-match at 'confirm' may reach 'size' (option 2) via confirm -> size")
    ]


@pytest.mark.unit
def test_a_menus_next_is_an_error_misses_are_routed_by_name() -> None:
    flow = pizza(Say("sorry", "Sorry."), next="sorry")
    assert "error: step 'confirm': a Menu goes on by its options: next='sorry' is never " in (
        "\n".join(found(flow))
    )


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "check", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip


@pytest.mark.contract
def test_flows_check_names_the_route(tmp_path: Path) -> None:
    issue = tmp_path / "pizza.py"
    issue.write_text(PIZZA.replace("{extra}", "").replace("{sorry}", ""))
    ok = run_check(issue)
    assert ok.returncode == 0 and f"{issue}: flow 'pizza': ok (4 steps)" in ok.stdout
    bad = tmp_path / "sorry" / "pizza.py"
    bad.parent.mkdir()
    bad.write_text(PIZZA.replace("{extra}", ', no_match="sorry"').replace("{sorry}", SORRY))
    proc = run_check(bad)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        f"{bad}: flow 'pizza': error: a no-match at 'confirm' reaches 'ordered' (option 1) via "
        "confirm -> sorry -> ordered: a caller's mistake would act for them; send the miss to a "
        "step that asks again or ends the call, or leave no_match out (asked again, then an "
        "apology and a hang-up)"
    ]
