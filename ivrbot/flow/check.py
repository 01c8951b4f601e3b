"""Static checks of a flow before it runs: the graph (unknown targets, unreachable steps,
the start step), each step's own checks (``Step.check``), and the routes by which a
caller's miss at a Menu could reach one of its options' steps (:func:`miss_routes`)."""

from __future__ import annotations

from collections import deque

from ivrbot.flow.flow import Flow
from ivrbot.flow.steps import DTMF_KEYS, GIVE_UP, Ask, Edge, Menu, Problem, Python, Step

__all__ = ["DTMF_KEYS", "Edge", "Problem", "check_flow", "errors", "flow_edges", "miss_routes"]

MISS_LABELS = {"no input": "no-input", "no match": "no-match"}  # Edge label -> the miss


def flow_edges(flow: Flow) -> list[Edge]:
    """Where each step can go, including the implicit 'next step in order'."""
    return [edge for step in flow.steps.values() for edge in step.edges(flow.next_after(step.name))]


def check_flow(flow: Flow) -> list[Problem]:
    """Every problem found: unknown targets and unreachable steps, prompts, options, misses
    that could act for the caller."""
    if not flow.steps:
        return [Problem("error", None, "the flow has no steps: add some with flow.add(...)")]
    problems: list[Problem] = []
    edges = flow_edges(flow)
    for edge in edges:
        if edge.target not in flow.steps and edge.target != GIVE_UP:
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
    return problems + miss_routes(flow, edges)


def errors(flow: Flow) -> list[Problem]:
    return [p for p in check_flow(flow) if p.severity == "error"]


# a caller's miss must never act for them -------------------------------------------------------
def miss_routes(flow: Flow, edges: list[Edge] | None = None) -> list[Problem]:
    """Every way a no-input or no-match at a Menu could reach a step that is also one of
    that Menu's options' steps without the caller choosing it: one problem per Menu, kind
    of miss and step reached, naming the shortest route. Coming back to the same Menu is
    fine (the caller is asked again), and so is an option chosen at another Menu.

    An error when the route is certain: nothing on it asks the caller or decides in Python,
    so the flow does what the option does for a caller who did not choose it. A warning when
    a step on the way (or the step reached) asks the caller something, or is a Python step
    that may look at the answer: a shared "sorry, try again" step can be meant so."""
    out_of: dict[str, list[Edge]] = {}
    for edge in flow_edges(flow) if edges is None else edges:
        if edge.target in flow.steps:
            out_of.setdefault(edge.source, []).append(edge)
    problems: list[Problem] = []
    for menu in flow.steps.values():
        if not isinstance(menu, Menu):
            continue
        keys: dict[str, list[str]] = {}
        for key, target in menu.options.items():
            keys.setdefault(target, []).append(key)
        misses: dict[str, list[str]] = {}  # the step a miss goes to -> 'no-input', 'no-match'
        for edge in out_of.get(menu.name, []):
            if edge.label in MISS_LABELS:
                misses.setdefault(edge.target, []).append(MISS_LABELS[edge.label])
        for start, kinds in misses.items():
            certain = _routes(flow, out_of, menu, start, keys, certain=True)
            possible = _routes(flow, out_of, menu, start, keys, certain=False)
            for target, route in certain.items():
                problems.append(_problem("error", menu, kinds, target, keys[target], route))
            for target, route in possible.items():
                if target not in certain:
                    problems.append(_problem("warning", menu, kinds, target, keys[target], route))
    return problems


def _asks_or_decides(step: Step) -> bool:
    return isinstance(step, Ask | Python)


def _routes(
    flow: Flow,
    out_of: dict[str, list[Edge]],
    menu: Menu,
    start: str,
    keys: dict[str, list[str]],
    certain: bool,
) -> dict[str, list[str]]:
    """Option steps of ``menu`` reached from ``start`` (where a miss goes), each with the
    shortest route from the menu; ``certain``: only through steps that neither ask nor decide."""
    came_from: dict[str, str] = {start: menu.name}
    found: dict[str, list[str]] = {}
    todo = deque([start])
    while todo:
        name = todo.popleft()
        if name == menu.name:
            continue  # asked again: the caller chooses anew
        step = flow.steps[name]
        if certain and _asks_or_decides(step):
            continue
        if name in keys:
            route = [name]
            while route[-1] != menu.name:
                route.append(came_from[route[-1]])
            found[name] = route[::-1]
            continue  # the flow acts here: what comes after is moot
        for edge in out_of.get(name, []):
            if isinstance(step, Menu) and edge.label not in MISS_LABELS:
                continue  # an option the caller chose at that menu
            if edge.target not in came_from:
                came_from[edge.target] = name
                todo.append(edge.target)
    return found


def _problem(
    severity: str, menu: Menu, kinds: list[str], target: str, keys: list[str], route: list[str]
) -> Problem:
    options = f"option{'s' if len(keys) > 1 else ''} {', '.join(keys)}"
    way = " -> ".join(route)
    miss = " or ".join(kinds)
    if severity == "error":
        return Problem("error", None, (
            f"a {miss} at {menu.name!r} reaches {target!r} ({options}) via {way}: a caller's "
            "mistake would act for them; send the miss to a step that asks again or ends the "
            f"call, or leave {'/'.join(k.replace('-', '_') for k in kinds)} out (asked again, "
            "then an apology and a hang-up)"
        ))  # fmt: skip
    return Problem("warning", None, (
        f"a {miss} at {menu.name!r} may reach {target!r} ({options}) via {way}: make sure "
        "a caller who did not choose it cannot get it that way"
    ))  # fmt: skip
