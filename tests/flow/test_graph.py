"""Flow pictures: laid out by Graphviz, no arrow through a box, labels apart, every kind
named in its box and in the legend; a clear error when Graphviz is missing."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivrbot.flow import Ask, Flow, Hangup
from ivrbot.flow.graph import digraph, svg
from ivrbot.flow.loader import flow_files, load_flow_file
from tests.flow.pictures import SVG, crossings, geometry

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = flow_files(ROOT / "flows")


def texts(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}text")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_no_arrow_runs_through_a_box_and_no_label_lies_on_another(path: Path) -> None:
    picture = svg(load_flow_file(path, check_model=False))
    boxes, _, arrows = geometry(picture)
    assert len(boxes) >= 3 and arrows
    assert crossings(picture) == []


def test_the_geometry_check_sees_an_arrow_through_a_box() -> None:
    """Straight arrows (no routing around boxes) cross boxes in the bank flow: the check
    above would catch a picture that does that (as the hand-made layout did)."""
    graph = digraph(load_flow_file(ROOT / "flows" / "bank.py", check_model=False))
    graph.attr(splines="line")
    found = crossings(graph.pipe(format="svg", encoding="utf-8"))
    assert "step-menu -> step-agent crosses step-account" in found


def test_every_box_names_its_kind_and_the_legend_names_every_kind() -> None:
    flow = Flow("kinds", number="5550001001")
    flow.add(
        Ask("talk", "What do you need?", digits=0, free_form=True),
        Ask("keys", "Press a key."),
        Hangup("bye"),
    )
    root = ET.fromstring(svg(flow))
    nodes = {g.get("id"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert set(nodes) == {"step-talk", "step-keys", "step-bye", "give-up"}  # misses: give up
    assert texts(nodes["step-talk"]) == ["talk", "Ask", "free speech: What do you need?"]
    assert texts(nodes["step-keys"]) == [
        "keys",
        "Ask",
        "keys: Press a key.",
    ]
    assert texts(nodes["step-bye"]) == ["bye", "Hangup", "end the call"]
    # the legend: the title, then one swatch per kind (filled with the boxes' colour)
    top = root.find(f"{SVG}g")
    assert top is not None
    legend = [t.text for t in top.findall(f"{SVG}text")]
    assert legend[:4] == ["kinds answers 5550001001", "Ask", "Hangup", "give up"]
    assert "thick border: the start step" in (legend[4] or "")


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
