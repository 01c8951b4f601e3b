"""``ivrbot flows test --fast``: scenario files run on the test kit (virtual time, no media).

Each scenario's actions become the kit's caller: ``press`` / ``press_inband`` press keys,
``say`` says words (judged by the question's choices, not heard by a recogniser), ``wait``
is silence, ``hangup`` hangs up; a ``hear`` with ``contains`` checks that the bot said it.
An outbound scenario's callee is on record as a person (``answered_by``) or a machine whose
beep was heard. Conference rooms can be joined; a Transfer or Move has nobody to answer, so
a scenario that reaches one fails with a line saying so (run it without ``--fast``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ivrbot.errors import FlowError
from ivrbot.testing.flowtest import FlowTest, FlowTestError
from ivrbot.testing.scenario import ScenarioResult, find_scenario_flow
from ivrbot.testing.scenario_file import Scenario, check_expectations, plain, show


def run_fast(scenario: Scenario, flows_dir: Path | None = None) -> ScenarioResult:
    """Run one scenario on the test kit; its result as ``flows test`` reports it."""
    began = time.perf_counter()
    try:
        flow = find_scenario_flow(scenario, flows_dir)
    except FlowError as exc:
        return ScenarioResult(scenario, time.perf_counter() - began, [str(exc)])
    callee: dict[str, object] = {}
    if scenario.direction == "outbound":
        machine = scenario.callee == "machine"
        callee = {"answered_by": "machine" if machine else "human"} | (
            {"beep": True} if machine else {}
        )
    test = FlowTest(flow, env=scenario.env, vars=callee).conference_joins(*[True] * 10)
    heard: list[tuple[str, str]] = []  # (action, text it should find)
    for action in scenario.actions:
        if action.kind == "hear" and action.contains is not None:
            heard.append((str(action), action.contains))
        elif action.kind in ("press", "press_inband"):
            test.press(action.value)
        elif action.kind == "say":
            test.say(action.value)
        elif action.kind == "wait":
            test.silence(action.value)
        elif action.kind == "hangup":
            test.hangup()
    try:
        result = test.run()
    except FlowTestError as exc:
        why = f"cannot run on the test kit: {exc} (run it without --fast)"
        return ScenarioResult(scenario, time.perf_counter() - began, [why])
    failures = [
        f"{action}: no prompt contains {text!r}; the bot said {show(result.prompts)}"
        for action, text in heard
        if not any(text.casefold() in p.casefold() for p in result.prompts)
    ]
    failures += check_expectations(scenario.expect, result.record, result.vars)
    out = ScenarioResult(scenario, time.perf_counter() - began, failures, result.record)
    out.values = {k: plain(v) for k, v in result.vars.items()}
    return out


def run_scenarios_fast(
    scenarios: list[Scenario],
    flows_dir: Path | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Run ``scenarios`` on the test kit, one after another."""
    results = []
    for scenario in scenarios:
        result = run_fast(scenario, flows_dir)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results
