"""Static checks of a flow before it runs: the graph (unknown targets, unreachable steps,
the start step) and each step's own checks (``Step.check``)."""

from __future__ import annotations

from ivrbot.flow.flow import Flow
from ivrbot.flow.steps import DTMF_KEYS, Edge, Problem

__all__ = ["DTMF_KEYS", "Edge", "Problem", "check_flow", "errors", "flow_edges"]


def flow_edges(flow: Flow) -> list[Edge]:
    """Where each step can go, including the implicit 'next step in order'."""
    return [edge for step in flow.steps.values() for edge in step.edges(flow.next_after(step.name))]


def check_flow(flow: Flow) -> list[Problem]:
    """Every problem found: unknown targets and unreachable steps, prompts, options."""
    if not flow.steps:
        return [Problem("error", None, "the flow has no steps: add some with flow.add(...)")]
    problems: list[Problem] = []
    edges = flow_edges(flow)
    for edge in edges:
        if edge.target not in flow.steps:
            problems.append(
                Problem(
                    "error", edge.source, f"goes to unknown step {edge.target!r} ({edge.label})"
                )
            )
    for step in flow.steps.values():
        problems += step.check(flow)
    starts = []
    if flow.start in flow.steps:
        starts.append(flow.start)
    else:
        names = ", ".join(map(repr, flow.steps))
        problems.append(
            Problem("error", None, f"start names unknown step {flow.start!r} (steps: {names})")
        )
    if flow.on_error is not None:
        if flow.on_error in flow.steps:
            starts.append(flow.on_error)
        else:
            problems.append(
                Problem("error", None, f"on_error names unknown step {flow.on_error!r}")
            )
    reached, todo = set(starts), list(starts)
    while todo:
        current = todo.pop()
        for edge in edges:
            if edge.source == current and edge.target in flow.steps and edge.target not in reached:
                reached.add(edge.target)
                todo.append(edge.target)
    if flow.start in flow.steps:
        for name in flow.steps:
            if name not in reached:
                problems.append(
                    Problem("error", name, f"unreachable from the start step {flow.start!r}")
                )
    return problems


def errors(flow: Flow) -> list[Problem]:
    return [p for p in check_flow(flow) if p.severity == "error"]
