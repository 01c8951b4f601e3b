"""Drawing a flow: Mermaid text, and an SVG picture laid out by Graphviz's ``dot``.

Each step is a box (``id="step-<name>"`` in the SVG) coloured and named by its kind, with a
few words of what it does (``Step.kind``, ``Step.colour``, ``Step.summary``); arrows are
labelled with when they are taken; a miss that no step takes goes to a "give up" end
(``id="give-up"``: the caller hears the flow's ``give_up`` text, the bot hangs up).
Graphviz routes the arrows around the boxes and places the labels; a legend above the
picture names every kind of step in it.
"""

from __future__ import annotations

import subprocess
from html import escape
from typing import Any

import graphviz

from ivrbot.errors import FlowError
from ivrbot.flow.check import flow_edges
from ivrbot.flow.flow import Flow
from ivrbot.flow.steps import GIVE_UP, Step

SUMMARY_LIMIT = 34
PROMPT_LIMIT = 90  # a prompt in a dashboard box (two lines or so)
PLAIN = ("next", "goto")  # solid arrows; every other way is dashed and labelled
FONT = "sans-serif"
GIVE_UP_KIND = "give up"
GIVE_UP_COLOUR = "#e5e7eb"


class GraphvizMissing(FlowError):
    """Graphviz's ``dot`` program is not installed."""


def _short(text: str, limit: int = SUMMARY_LIMIT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _merged_edges(flow: Flow) -> dict[tuple[str, str], str]:
    """(source, target) -> the labels of every way between them, joined."""
    merged: dict[tuple[str, str], list[str]] = {}
    for edge in flow_edges(flow):
        if edge.target in flow.steps or edge.target == GIVE_UP:
            merged.setdefault((edge.source, edge.target), []).append(edge.label)
    return {pair: ", ".join(dict.fromkeys(labels)) for pair, labels in merged.items()}


def _gives_up(flow: Flow) -> bool:
    return any(edge.target == GIVE_UP for edge in flow_edges(flow))


def _give_up_summary(flow: Flow) -> str:
    return f"{flow.give_up} · hang up" if flow.give_up else "hang up"


def mermaid(flow: Flow) -> str:
    """The flow as a Mermaid flowchart (paste into any Mermaid viewer)."""
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    lines = ["flowchart TD"]
    for name, step in flow.steps.items():
        label = f"{name}<br/><i>{step.kind}</i> {_short(step.summary())}".replace('"', "'")
        lines.append(f'    {ids[name]}["{label}"]')
        lines.append(f"    style {ids[name]} fill:{step.colour}")
    if _gives_up(flow):
        ids[GIVE_UP] = "giveup"
        label = f"<i>{GIVE_UP_KIND}</i> {_short(_give_up_summary(flow))}".replace('"', "'")
        lines.append(f'    giveup(["{label}"])')
        lines.append(f"    style giveup fill:{GIVE_UP_COLOUR}")
    for edge in flow_edges(flow):
        if edge.target in ids:
            arrow = "-->" if edge.label == "next" else f"-- {edge.label} -->"
            lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
    if flow.start in ids:
        lines.append(f"    style {ids[flow.start]} fill:{flow.steps[flow.start].colour},"
                     "stroke-width:3px")  # fmt: skip
    return "\n".join(lines) + "\n"


def box_text(step: Step) -> tuple[str, str]:
    """(prompt, detail): the first words the step says, and what else its summary tells
    (the summary without the prompt: 'keys' for an Ask, '<= 60 s, # ends' for a Record)."""
    prompt = next(iter(step.prompt_texts()), "")
    detail = step.summary()
    if prompt and prompt in detail:
        detail = detail.replace(prompt, "").strip(" :")
    return " ".join(prompt.split()), " ".join(detail.split())


def graph_data(flow: Flow) -> dict[str, Any]:
    """The flow for a page to lay out (the dashboard uses dagre): every step with its kind,
    colour, prompt (shortened), what else it does and its options, and every edge with its
    label."""
    edges = list(flow_edges(flow))
    nodes = []
    for name, step in flow.steps.items():
        prompt, detail = box_text(step)
        chosen = options(step)
        nodes.append({
            "id": name, "label": name, "kind": step.kind, "colour": step.colour,
            "prompt": _short(prompt, PROMPT_LIMIT), "detail": "" if chosen else _short(detail),
            "options": chosen, "start": name == flow.start,
        })  # fmt: skip
    if _gives_up(flow):  # misses no step takes: the bot gives up (an end, not a step)
        nodes.append({
            "id": GIVE_UP, "label": GIVE_UP_KIND, "kind": GIVE_UP_KIND, "colour": GIVE_UP_COLOUR,
            "prompt": _short(flow.give_up, PROMPT_LIMIT), "detail": "hang up", "options": [],
            "start": False, "end": True,
        })  # fmt: skip
    return {
        "flow": flow.name,
        "start": flow.start,
        "nodes": nodes,
        "edges": [{"from": e.source, "to": e.target, "label": e.label} for e in edges],
    }


def options(step: Step) -> list[dict[str, str]]:
    """A step's options (a Menu's keys and words): its edges labelled 'option KEY'."""
    return [
        {"key": e.label.removeprefix("option "), "to": e.target}
        for e in step.edges(None)
        if e.label.startswith("option ")
    ]


def _box(step: Step) -> str:
    """A step's box: its name and kind, its prompt (shortened), then its options or what
    else it does (a Graphviz HTML-like label)."""
    prompt, detail = box_text(step)
    chosen = options(step)
    rows = [
        f'<tr><td align="left"><b>{escape(step.name)}</b></td>'
        f'<td align="right"><font color="#1f2937">{escape(step.kind)}</font></td></tr>'
    ]
    if prompt:
        rows.append(
            f'<tr><td align="left" colspan="2"><i>{escape(_short(f"“{prompt}”"))}</i></td></tr>'
        )
    if chosen:
        text = " · ".join(f"{o['key']} → {o['to']}" for o in chosen)
        rows.append(f'<tr><td align="left" colspan="2"><b>{escape(_short(text))}</b></td></tr>')
    elif detail or not prompt:
        rows.append(f'<tr><td align="left" colspan="2">{escape(_short(detail)) or " "}</td></tr>')
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="2">'
        + "".join(rows)
        + "</table>>"
    )


def _end_box(kind: str, summary: str) -> str:
    """The box of an end that is no step (a miss nobody takes: the bot gives up)."""
    return (
        '<<table border="0" cellborder="0" cellspacing="0" cellpadding="2">'
        f'<tr><td align="left"><b>{escape(kind)}</b></td></tr>'
        f'<tr><td align="left"><font color="#374151">{escape(_short(summary))}</font></td></tr>'
        "</table>>"
    )


def _legend(flow: Flow) -> str:
    """The title and the legend: every kind of step in the flow, and the kinds of arrow."""
    kinds: dict[str, str] = {}
    for step in flow.steps.values():
        kinds.setdefault(step.kind, step.colour)
    if _gives_up(flow):
        kinds[GIVE_UP_KIND] = GIVE_UP_COLOUR
    swatches = "".join(
        f'<td bgcolor="{colour}" border="1" style="rounded">{escape(kind)}</td>'
        for kind, colour in kinds.items()
    )
    title = f"{flow.name} answers {', '.join(flow.numbers)}"
    notes = (
        "thick border: the start step · solid arrow: next / goto · "
        "dashed arrow: the way its label names"
    )
    return (
        '<<table border="0" cellspacing="2" cellpadding="2">'
        f'<tr><td align="left"><b>{escape(title)}</b></td></tr>'
        '<tr><td align="left"><table border="0" cellspacing="4" cellpadding="4">'
        f"<tr>{swatches}</tr></table></td></tr>"
        f'<tr><td align="left"><font color="#4b5563">{escape(notes)}</font></td></tr>'
        "</table>>"
    )


def digraph(flow: Flow) -> graphviz.Digraph:
    """The flow as a Graphviz graph (``str()`` of it is the DOT source)."""
    graph = graphviz.Digraph(flow.name)
    graph.attr(rankdir="TB", nodesep="0.45", ranksep="0.5", fontname=FONT, fontsize="12",
               label=_legend(flow), labelloc="t", labeljust="l")  # fmt: skip
    graph.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="12",
               color="#1f2937", margin="0.12,0.06")  # fmt: skip
    graph.attr("edge", fontname=FONT, fontsize="11", fontcolor="#6b7280", color="#374151",
               arrowsize="0.8")  # fmt: skip
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    for name, step in flow.steps.items():
        graph.node(ids[name], _box(step), id=f"step-{name}", fillcolor=step.colour,
                   penwidth="2.5" if name == flow.start else "1")  # fmt: skip
    if _gives_up(flow):
        ids[GIVE_UP] = "giveup"
        graph.node("giveup", _end_box(GIVE_UP_KIND, _give_up_summary(flow)), id="give-up",
                   fillcolor=GIVE_UP_COLOUR, style="rounded,filled,dashed")  # fmt: skip
    for (source, target), label in _merged_edges(flow).items():
        attrs = {} if label in PLAIN else {"label": f"<{escape(label)}>", "style": "dashed"}
        edge_id = f"edge-{source}-{'give-up' if target == GIVE_UP else target}"
        graph.edge(ids[source], ids[target], id=edge_id, **attrs)
    return graph


def render(flow: Flow, fmt: str) -> str:
    """The flow laid out by ``dot`` in format ``fmt`` ('svg', 'json'...)."""
    try:
        return digraph(flow).pipe(format=fmt, encoding="utf-8")
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing(
            "drawing a flow needs Graphviz's dot program: install it (apt-get install "
            "graphviz), or print Mermaid text instead (ivrbot flows graph --mermaid)"
        ) from None
    except (graphviz.CalledProcessError, subprocess.SubprocessError, OSError) as exc:
        raise FlowError(f"flow {flow.name!r}: Graphviz could not draw it: {exc}") from None


def svg(flow: Flow) -> str:
    """A picture of the flow: one box per step, arrows labelled with how it gets there."""
    return render(flow, "svg")
