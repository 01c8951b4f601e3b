"""``ivrbot flows ...``: check and draw call flows, and test them with scenario files."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from ivrbot.cli.dial import find_flow
from ivrbot.flow.check import Problem, check_flow
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.loader import check_numbers_free, flow_files, import_flow_file
from ivrbot.speech.models import flow_model_problem
from ivrbot.speech.tts import TtsUnavailable

if TYPE_CHECKING:  # the test harness is imported only by the commands that run scenarios
    from ivrbot.testing.scenario_file import Scenario


@click.group()
def flows() -> None:
    """Check, draw and test call flows."""


def _flow_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return flow_files(path)
    raise click.ClickException(f"{path}: no such flow file or folder")


@flows.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("flows"))
def check(path: Path) -> None:
    """Check flows in PATH (a file or a folder): targets, reachability, prompts, options,
    and that no two flows of a folder answer the same number (ivrbot run would serve one)."""
    failed = False
    checked: list[Flow] = []
    for file in _flow_files(path):
        try:
            flow = import_flow_file(file)
        except FlowError as exc:
            click.echo(f"{exc}", err=True)
            failed = True
            continue
        try:
            check_numbers_free(flow, checked)
        except FlowError as exc:
            click.echo(f"{exc}: give each flow its own number", err=True)
            failed = True
            continue
        checked.append(flow)
        problems = check_flow(flow)
        if flow.needs_speech():
            missing = flow_model_problem(flow)
            if missing:
                problems.append(Problem("error", None, missing))
        for problem in problems:
            click.echo(f"{file}: flow {flow.name!r}: {problem}", err=problem.severity == "error")
        failed |= any(p.severity == "error" for p in problems)
        if not problems:
            click.echo(f"{file}: flow {flow.name!r}: ok ({len(flow.steps)} steps)")
    sys.exit(1 if failed else 0)


@flows.command()
@click.argument("name")
@click.argument("flows_dir", type=click.Path(path_type=Path), required=False)
@click.option(
    "--flows-dir",
    "flows_dir_option",
    type=click.Path(path_type=Path),
    default=None,
    help="The same as FLOWS_DIR.",
)
@click.option("--mermaid", "as_mermaid", is_flag=True, help="Print Mermaid text instead of SVG.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write to this file (default: NAME.svg).",
)
def graph(
    name: str,
    flows_dir: Path | None,
    flows_dir_option: Path | None,
    as_mermaid: bool,
    output: Path | None,
) -> None:
    """Draw flow NAME of FLOWS_DIR (default: flows), or a flow file, as an SVG picture or
    as Mermaid text.

    The picture is laid out by Graphviz (the ``dot`` program: apt-get install graphviz);
    each step's box has id="step-NAME"; a legend names the kinds of steps."""
    if flows_dir and flows_dir_option and flows_dir != flows_dir_option:
        raise click.UsageError(
            f"FLOWS_DIR {flows_dir} and --flows-dir {flows_dir_option}: give one"
        )
    folder = flows_dir or flows_dir_option or Path("flows")
    if not folder.is_dir():
        raise click.ClickException(f"{folder}: no such folder of flows")
    try:
        flow = find_flow(name, folder, check_model=False)
    except FlowError as exc:
        raise click.ClickException(str(exc)) from None
    if as_mermaid:
        text = mermaid(flow)
        if output is None:
            click.echo(text, nl=False)
            return
    else:
        try:
            text = svg(flow)
        except FlowError as exc:  # Graphviz missing, or it failed
            raise click.ClickException(str(exc)) from None
        output = output or Path(f"{flow.name}.svg")
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")


@flows.command("test")
@click.argument("path", type=click.Path(path_type=Path), default=Path("flows"))
@click.option(
    "--flows-dir",
    type=click.Path(path_type=Path),
    help="Where the scenarios' flows are (default: the folder that holds scenarios/).",
)
@click.option("-k", "select", metavar="TEXT", help="Only the scenarios whose name has TEXT.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@click.option(
    "--fast",
    is_flag=True,
    help="Run on the test kit instead: a scripted caller on virtual time, no media (words "
    "are judged by the question's choices, not recognised); milliseconds a scenario.",
)
def run_tests(
    path: Path, flows_dir: Path | None, select: str | None, as_json: bool, fast: bool
) -> None:
    """Run the scenarios in PATH against their flows: a scenario file (.toml), a folder of
    them, or a folder of flows (default: flows), whose scenarios are in its scenarios/.

    Each scenario is a real call: a gateway on 127.0.0.1, a bot for the flow and a simulated
    caller (or, for outbound flows, a callee the bot dials), assembled as ivrbot run does. A
    scenario's [env] table goes over the settings and the flow's call.env; the environment
    itself is not changed. One line per scenario; exit status 1 when any fails. The file
    format: ivrbot/testing/scenario.py, and README.md. With --fast each runs on the test
    kit instead (ivrbot.testing.flowtest): no media, virtual time, milliseconds each.
    """
    from ivrbot.testing.scenario import ScenarioResult, run_scenarios  # starts nothing yet

    scenarios = _load_scenarios(path)
    if select:
        scenarios = [s for s in scenarios if select in s.name]
        if not scenarios:
            _fail(f"{path}: no scenario name contains {select!r}")
    width = max(len(s.name) for s in scenarios)

    def report(result: ScenarioResult) -> None:
        if as_json:
            return
        mark = click.style("PASS", fg="green") if result.passed else click.style("FAIL", fg="red")
        where = "" if result.passed else f"  {result.scenario.file}"
        click.echo(f"{mark}  {result.scenario.name:<{width}}  {result.seconds:5.1f} s{where}")
        for failure in result.failures:
            click.echo(f"      {failure}")

    try:
        if fast:
            from ivrbot.testing.scenario_fast import run_scenarios_fast

            results = run_scenarios_fast(scenarios, flows_dir, on_result=report)
        else:
            results = asyncio.run(run_scenarios(scenarios, flows_dir, on_result=report))
    except TtsUnavailable as exc:
        _fail(str(exc))
    failed = sum(not r.passed for r in results)
    seconds = sum(r.seconds for r in results)
    if as_json:
        summary = {"passed": len(results) - failed, "failed": failed, "seconds": round(seconds, 2)}
        out = {**summary, "scenarios": [r.to_dict() for r in results]}
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        click.echo(f"{len(results) - failed} passed, {failed} failed ({seconds:.1f} s)")
    sys.exit(1 if failed else 0)


SCENARIOS = "scenarios"  # a folder of flows keeps its scenario files here


def _load_scenarios(path: Path) -> list[Scenario]:
    """Every scenario file at ``path`` (a file, a folder of them, or a folder of flows with a
    scenarios/ folder), read and checked; one line per bad file, then exit 1."""
    from ivrbot.testing.scenario_file import ScenarioError, load_scenario, scenario_files

    inside = path / SCENARIOS
    if path.is_dir() and not any(path.glob("*.toml")) and inside.is_dir():
        path = inside  # a folder of flows: its scenarios/
    try:
        files = scenario_files(path)
    except ScenarioError as exc:
        message = str(exc)
        if path.is_dir() and path.name != SCENARIOS:  # say where else it looked
            message = (
                f"{path}: no scenario files (*.toml) in it, nor in {inside}/: write one there "
                "(README: Scenarios)"
            )
        _fail(message)
    scenarios, problems = [], []
    for file in files:
        try:
            scenarios.append(load_scenario(file))
        except ScenarioError as exc:
            problems.append(str(exc))
    for problem in problems:
        click.echo(f"ivrbot: error: {problem}", err=True)
    if problems:
        sys.exit(1)
    return scenarios


def _fail(message: str) -> NoReturn:
    click.echo(f"ivrbot: error: {message}", err=True)
    sys.exit(1)
