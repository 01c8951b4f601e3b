"""Flow pictures: laid out by Graphviz, no arrow through a box, labels apart, every kind
named in its box and in the legend; a clear error when Graphviz is missing."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import ivrbot.flow.conference_steps
import ivrbot.flow.media_steps
import ivrbot.flow.transfer_steps  # noqa: F401 (their step classes)
from ivrbot.flow import Ask, Flow, Hangup, Menu
from ivrbot.flow.graph import digraph, svg
from ivrbot.flow.loader import flow_files, load_flow_file
from ivrbot.flow.steps import Step
from tests.flow.pictures import SVG, crossings, geometry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = flow_files(ROOT / "flows")


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


@pytest.mark.contract
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_no_arrow_runs_through_a_box_and_no_label_lies_on_another(path: Path) -> None:
    picture = svg(load_flow_file(path, check_model=False))
    boxes, _, arrows = geometry(picture)
    assert len(boxes) >= 3 and arrows
    assert crossings(picture) == []


@pytest.mark.contract
def test_the_geometry_check_sees_an_arrow_through_a_box() -> None:
    """Straight arrows (no routing around boxes) cross boxes in the bank flow: the check
    above would catch a picture that does that (as the hand-made layout did)."""
    graph = digraph(load_flow_file(ROOT / "flows" / "bank.py", check_model=False))
    graph.attr(splines="line")
    found = crossings(graph.pipe(format="svg", encoding="utf-8"))
    assert "step-menu -> step-agent crosses step-account" in found


@pytest.mark.contract
def test_every_box_names_its_kind_and_the_legend_names_every_kind() -> None:
    flow = Flow("kinds", number="5550001001")
    flow.add(
        Ask("talk", "What do you need?", digits=0, free_form=True),
        Ask("keys", "Press a key."),
        Hangup("bye"),
        Menu("pick", "Press 1 or 2.", options={"1": "keys", "2": "bye"}),
    )
    root = ET.fromstring(svg(flow))
    nodes = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert set(nodes) == {"step-talk", "step-keys", "step-bye", "step-pick", "give-up"}
    assert texts(nodes["step-talk"]) == ["talk", "Ask", "“What do you need?”", "free speech"]
    assert texts(nodes["step-keys"]) == ["keys", "Ask", "“Press a key.”", "keys"]
    assert texts(nodes["step-bye"]) == ["bye", "Hangup", "end the call"]
    assert texts(nodes["step-pick"]) == ["pick", "Menu", "“Press 1 or 2.”", "1 → keys · 2 → bye"]
    # the legend: the title, then one swatch per kind (filled with the boxes' colour)
    top = root.find(f"{SVG}g")
    assert top is not None
    legend = [t.text for t in top.findall(f"{SVG}text")]
    assert legend[:5] == ["kinds answers 5550001001", "Ask", "Hangup", "Menu", "give up"]
    assert "thick border: the start step" in (legend[5] or "")


def lab(colour: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB ``#rrggbb``."""
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [((c + 0.055) / 1.055) ** 2.4 if c > 0.04045 else c / 12.92 for c in rgb]
    xyz = (
        (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
        0.2126 * r + 0.7152 * g + 0.0722 * b,
        (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
    )
    fx, fy, fz = [v ** (1 / 3) if v > 0.008856 else 7.787 * v + 16 / 116 for v in xyz]
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def step_kinds() -> list[type[Step]]:
    found, todo = [], list(Step.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("ivrbot.flow."):
            found.append(cls)
    return found


@pytest.mark.unit
def test_every_kind_of_step_has_a_colour_clearly_its_own() -> None:
    """The boxes of two kinds never look alike (CIE76 colour difference 30 or more: 2.3 is
    "just noticeable"), and dark text stays readable on each (lightness 60 or more)."""
    kinds = step_kinds()
    assert len(kinds) >= 12 and all("colour" in vars(k) for k in kinds)
    closest = min(
        (math.dist(lab(a.colour), lab(b.colour)), a.__name__, b.__name__)
        for a, b in itertools.combinations(kinds, 2)
    )
    assert closest[0] >= 30, f"{closest[1]} and {closest[2]} look alike: {closest[0]:.1f}"
    assert min(lab(k.colour)[0] for k in kinds) >= 60


@pytest.mark.contract
def test_without_graphviz_flows_graph_says_what_to_install(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ivrbot", "flows", "graph", "welcome", "-o", str(tmp_path / "w.svg")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**os.environ, "PATH": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "Error: drawing a flow needs Graphviz's dot program: install it (apt-get install "
        "graphviz), or print Mermaid text instead (ivrbot flows graph --mermaid)"
    ]
    assert not (tmp_path / "w.svg").exists()
