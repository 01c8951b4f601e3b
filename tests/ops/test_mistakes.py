"""The mistakes of issue 15 a new operator made, as they run them: each is one line on
stderr naming what to fix, exit status 1, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.contract  # ivrbot commands: their messages and exit codes

ROOT = Path(__file__).resolve().parents[2]
IVRBOT = [sys.executable, "-m", "ivrbot"]


def ivrbot(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IVRBOT, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, **env},
    )  # fmt: skip


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ivrbot: error: ")
    return lines[0]


def test_graph_into_a_missing_folder_names_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "dir" / "x.svg"
    line = one_error_line(ivrbot("flows", "graph", "flows/welcome.py", "-o", str(target)))
    assert str(target.parent) in line and "does not exist" in line
    assert not target.parent.exists()


def test_a_bad_port_setting_names_the_variable_and_the_form() -> None:
    line = one_error_line(ivrbot("run", "flows", IVRBOT_PORT="abc"))
    assert "IVRBOT_PORT='abc'" in line and "whole number" in line


def test_a_bad_number_setting_stops_any_command(tmp_path: Path) -> None:
    line = one_error_line(ivrbot("calls", "list", cwd=tmp_path, IVRBOT_RING_TIMEOUT="soon"))
    assert "IVRBOT_RING_TIMEOUT='soon'" in line and "number" in line


def test_a_bad_log_level_names_the_variable() -> None:
    line = one_error_line(ivrbot("calls", "list", IVRBOT_LOG_LEVEL="loud"))
    assert "IVRBOT_LOG_LEVEL='loud'" in line and "debug, info, warning, error" in line


def test_a_port_in_use_is_named_before_anything_loads(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # the flows folder does not exist either: the port is checked first, at once
        proc = ivrbot("run", str(tmp_path / "no-flows"), "--port", str(port))
    line = one_error_line(proc)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port or IVRBOT_PORT" in line


def test_listing_calls_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    proc = ivrbot("calls", "list", "--db", "missing.db", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["Error: no store at missing.db (give --db FILE, or set IVRBOT_DB)"]
    assert not (tmp_path / "missing.db").exists()


def test_reading_campaigns_of_a_missing_store_creates_nothing(tmp_path: Path) -> None:
    for args in (("list",), ("status", "reminder"), ("report", "reminder")):
        line = one_error_line(ivrbot("campaign", *args, "--db", "missing.db", cwd=tmp_path))
        assert line == "ivrbot: error: no store at missing.db (give --db FILE, or set IVRBOT_DB)"
    assert not (tmp_path / "missing.db").exists()
