"""Drawing a flow: Mermaid text, and an SVG picture that needs no other program."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from xml.sax.saxutils import escape

from ivrbot.flow.check import Edge, flow_edges
from ivrbot.flow.conference_steps import Conference
from ivrbot.flow.flow import Flow
from ivrbot.flow.media_steps import Play, Record
from ivrbot.flow.steps import Ask, Goto, Hangup, Menu, Python, Say, Set, Step
from ivrbot.flow.transfer_steps import Move, Transfer

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 220, 58, 110, 70, 30
COLOURS = {
    "Say": "#dbeafe", "Ask": "#dcfce7", "Python": "#f3f4f6", "Hangup": "#fee2e2",
    "Goto": "#ede9fe", "Record": "#fef3c7", "Play": "#e0f2fe", "Set": "#f5f5f4",
    "Transfer": "#fce7f3", "Move": "#ecfccb", "Menu": "#bbf7d0", "Conference": "#fde68a",
}  # fmt: skip


def _kind(step: Step) -> str:
    return type(step).__name__


def _summary(step: Step, limit: int = 30) -> str:
    if isinstance(step, Say):
        text = step.text
    elif isinstance(step, Menu):
        text = ", ".join(f"{k}: {v}" for k, v in step.options.items())
    elif isinstance(step, Ask):
        ways = (["keys"] if step.digits else []) + (["speech"] if step.choice_map else [])
        text = f"{' + '.join(ways)}: {step.prompt}"
    elif isinstance(step, Hangup):
        text = step.text or "end the call"
    elif isinstance(step, Python):
        text = f"{getattr(step.fn, '__name__', 'python')}()"
    elif isinstance(step, Goto):
        text = f"to {step.target}"
    elif isinstance(step, Record):
        ends = f", {step.finish_key} ends" if step.finish_key else ""
        text = f"<= {step.max_s:g} s{ends}" + (f": {step.prompt}" if step.prompt else "")
    elif isinstance(step, Play):
        text = Path(step.path).name
    elif isinstance(step, Set):
        text = ", ".join(
            f"{k}={'f(call)' if callable(v) else repr(v)}" for k, v in step.values.items()
        )
    elif isinstance(step, Transfer):
        text = f"{step.mode} to {step.to}"
    elif isinstance(step, Move):
        text = "to another session of the number"
    elif isinstance(step, Conference):
        text = f"room {step.room}" + (" (bot stays)" if step.stay else "")
    else:
        text = ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mermaid(flow: Flow) -> str:
    """The flow as a Mermaid flowchart (paste into any Mermaid viewer)."""
    ids = {name: f"s{i}" for i, name in enumerate(flow.steps)}
    lines = ["flowchart TD"]
    for name, step in flow.steps.items():
        label = f"{name}<br/><i>{_kind(step)}</i> {_summary(step)}".replace('"', "'")
        lines.append(f'    {ids[name]}["{label}"]')
    for edge in flow_edges(flow):
        if edge.target in ids:
            arrow = "-->" if edge.label == "next" else f"-- {edge.label} -->"
            lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
    return "\n".join(lines) + "\n"


def _layers(flow: Flow, edges: list[Edge]) -> list[list[str]]:
    depth = {flow.start: 0}
    queue = deque([flow.start])
    while queue:
        current = queue.popleft()
        for edge in edges:
            if edge.source == current and edge.target in flow.steps and edge.target not in depth:
                depth[edge.target] = depth[current] + 1
                queue.append(edge.target)
    last = max(depth.values(), default=0) + 1
    layers: list[list[str]] = [[] for _ in range(last + 1)]
    for name in flow.steps:
        layers[depth.get(name, last)].append(name)
    return [layer for layer in layers if layer]


def svg(flow: Flow) -> str:
    """A picture of the flow: one box per step, arrows labelled with how it gets there."""
    edges = flow_edges(flow)
    layers = _layers(flow, edges)
    widest = max(len(layer) for layer in layers)
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X + 240
    height = MARGIN * 2 + len(layers) * BOX_H + (len(layers) - 1) * GAP_Y + 30
    pos: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        row_width = len(layer) * BOX_W + (len(layer) - 1) * GAP_X
        x0 = (width - row_width) / 2
        for col, name in enumerate(layer):
            pos[name] = (x0 + col * (BOX_W + GAP_X), MARGIN + 30 + row * (BOX_H + GAP_Y))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z' "
        "fill='#374151'/></marker></defs>",
        f'<text x="{MARGIN}" y="{MARGIN}" font-size="15" font-weight="bold">'
        f"{escape(flow.name)} answers {escape(', '.join(flow.numbers))}</text>",
    ]
    merged: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        if edge.target in pos:
            merged.setdefault((edge.source, edge.target), []).append(edge.label)
    for (source, target), labels in merged.items():
        label = ", ".join(dict.fromkeys(labels))
        (sx, sy), (tx, ty) = pos[source], pos[target]
        if ty > sy:  # downwards: straight
            x1, y1, x2, y2 = sx + BOX_W / 2, sy + BOX_H, tx + BOX_W / 2, ty
            path = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
            lx, ly = (x1 + x2) / 2 + 4, (y1 + y2) / 2
        elif ty == sy and source != target:  # same row: straight across
            right = tx > sx
            x1, x2 = (sx + BOX_W, tx) if right else (sx, tx + BOX_W)
            y1 = y2 = sy + BOX_H / 2 + (8 if right else -8)
            path = f"M{x1:.0f},{y1:.0f} L{x2:.0f},{y2:.0f}"
            lx, ly = min(x1, x2) + 6, y1 - 5
        elif tx + BOX_W / 2 < sx + BOX_W / 2:  # back up, to the left: loop out leftwards
            x1, y1, x2, y2 = sx, sy + BOX_H / 2, tx, ty + BOX_H / 2
            bend = min(x1, x2) - 60
            path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly = bend + 4, (y1 + y2) / 2
        else:  # back up (or to itself): loop out to the right
            x1, y1, x2, y2 = sx + BOX_W, sy + BOX_H / 2, tx + BOX_W, ty + BOX_H / 2
            bend = max(x1, x2) + 60
            path = f"M{x1:.0f},{y1:.0f} C{bend:.0f},{y1:.0f} {bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
            lx, ly = bend - 20, (y1 + y2) / 2
        dash = "" if label in ("next", "goto") else " stroke-dasharray='5,3'"
        out.append(
            f"<path d='{path}' fill='none' stroke='#374151' marker-end='url(#arrow)'{dash}/>"
        )
        if label != "next":
            out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" fill="#6b7280">{escape(label)}</text>')
    for name, step in flow.steps.items():
        x, y = pos[name]
        colour = COLOURS.get(_kind(step), "#ffffff")
        start = " stroke-width='2.5'" if name == flow.start else ""
        out += [
            f"<g class='step' id='step-{escape(name)}'>",
            f"<rect x='{x:.0f}' y='{y:.0f}' width='{BOX_W}' height='{BOX_H}' rx='10' "
            f"fill='{colour}' stroke='#1f2937'{start}/>",
            f'<text x="{x + 10:.0f}" y="{y + 22:.0f}" font-weight="bold">{escape(name)}</text>',
            f'<text x="{x + BOX_W - 10:.0f}" y="{y + 22:.0f}" text-anchor="end" '
            f'fill="#4b5563">{_kind(step)}</text>',
            f'<text x="{x + 10:.0f}" y="{y + 44:.0f}" fill="#374151">'
            f"{escape(_summary(step))}</text>",
            "</g>",
        ]
    out.append("</svg>")
    return "\n".join(out) + "\n"
