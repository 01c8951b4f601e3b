"""``ivrbot flows ...``: check and draw flows without running them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ivrbot.cli_dial import find_flow
from ivrbot.flow.check import Problem, check_flow
from ivrbot.flow.flow import FlowError
from ivrbot.flow.graph import mermaid, svg
from ivrbot.flow.loader import flow_files, import_flow_file
from ivrbot.media.models import flow_model_problem


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
    """Check flows in PATH (a file or a folder): targets, reachability, prompts, options."""
    failed = False
    for file in _flow_files(path):
        try:
            flow = import_flow_file(file)
        except FlowError as exc:
            click.echo(f"{exc}", err=True)
            failed = True
            continue
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
@click.option(
    "--flows-dir", type=click.Path(path_type=Path), default=Path("flows"), show_default=True
)
@click.option("--mermaid", "as_mermaid", is_flag=True, help="Print Mermaid text instead of SVG.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="Write to this file (default: NAME.svg).",
)
def graph(name: str, flows_dir: Path, as_mermaid: bool, output: Path | None) -> None:
    """Draw flow NAME (or a flow file) as an SVG picture, or as Mermaid text."""
    try:
        flow = find_flow(name, flows_dir, check_model=False)
    except FlowError as exc:
        raise click.ClickException(str(exc)) from None
    if as_mermaid:
        text = mermaid(flow)
        if output is None:
            click.echo(text, nl=False)
            return
    else:
        text = svg(flow)
        output = output or Path(f"{flow.name}.svg")
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}")
