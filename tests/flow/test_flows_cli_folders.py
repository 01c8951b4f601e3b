"""``ivrbot flows check|graph|test`` on a folder of flows other than flows/, as a user runs
them: check refuses two flows on one number; graph and test take the folder as run does."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOW = """\
from ivrbot.flow import Flow, Hangup, Say
flow = Flow({name!r}, number={number!r})
flow.add(Say("hi", "Hello from {name}."))
flow.add(Hangup("bye", "Goodbye."))
"""


def ivrbot(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ivrbot", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip


def folder(tmp_path: Path, **flows: str) -> Path:
    """A folder of flows: name -> number."""
    path = tmp_path / "myflows"
    path.mkdir()
    for name, number in flows.items():
        (path / f"{name}.py").write_text(FLOW.format(name=name, number=number))
    return path


@pytest.mark.contract
def test_check_refuses_two_flows_on_one_number(tmp_path: Path) -> None:
    path = folder(tmp_path, front="5550001091", lobby="5550001091", other="5550001092")
    proc = ivrbot("flows", "check", str(path))
    assert proc.returncode == 1, proc.stdout
    (line,) = [x for x in proc.stderr.splitlines() if "5550001091" in x]
    assert str(path / "front.py") in line and str(path / "lobby.py") in line
    assert "own number" in line and "Traceback" not in proc.stderr
    assert "other.py: flow 'other': ok" in proc.stdout  # the rest is still checked
    # one file alone has nothing to clash with
    assert ivrbot("flows", "check", str(path / "lobby.py")).returncode == 0


@pytest.mark.contract
def test_graph_takes_the_folder_of_flows(tmp_path: Path) -> None:
    path = folder(tmp_path, front="5550001093", lobby="5550001093")  # lobby does not load
    out = tmp_path / "front.svg"
    proc = ivrbot("flows", "graph", "front", str(path), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    ids = {e.get("id") for e in ET.fromstring(out.read_text()).iter() if e.get("id")}
    assert {"step-hi", "step-bye"} <= ids
    assert ivrbot("flows", "graph", "front", "--flows-dir", str(path), "--mermaid").stdout
    # the flow whose file does not load: its own problem, in one line
    lobby = ivrbot("flows", "graph", "lobby", str(path), "-o", str(tmp_path / "l.svg"))
    assert lobby.returncode == 1 and "lobby.py" in lobby.stderr and "5550001093" in lobby.stderr
    missing = ivrbot("flows", "graph", "front", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "nowhere: no such folder of flows" in missing.stderr


@pytest.mark.contract
def test_test_takes_the_folder_of_flows_and_says_where_it_looked(tmp_path: Path) -> None:
    path = folder(tmp_path, front="5550001094")
    empty = ivrbot("flows", "test", str(path))
    assert empty.returncode == 1
    (line,) = empty.stderr.strip().splitlines()
    assert str(path) in line and f"{path / 'scenarios'}/" in line and "*.toml" in line
    (path / "scenarios").mkdir()
    (path / "scenarios" / "front.hello.toml").write_text(
        '[[actions]]\nhear = true\ncontains = "Hello from front"\n'
        '[expect]\npath = ["hi", "bye"]\noutcome = "completed"\n'
    )
    # found in <folder>/scenarios: -k picks none of them, and says so
    none = ivrbot("flows", "test", str(path), "-k", "nothing-like-it")
    assert none.returncode == 1 and "no scenario name contains 'nothing-like-it'" in none.stderr


@pytest.mark.e2e
def test_test_runs_the_scenarios_of_a_folder_of_flows(tmp_path: Path) -> None:
    path = folder(tmp_path, front="5550001095")
    (path / "scenarios").mkdir()
    (path / "scenarios" / "front.hello.toml").write_text(
        '[[actions]]\nhear = true\ncontains = "Hello from front"\n'
        '[expect]\npath = ["hi", "bye"]\noutcome = "completed"\n'
    )
    proc = ivrbot("flows", "test", str(path), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "PASS  front.hello" in proc.stdout and "1 passed, 0 failed" in proc.stdout
