"""bench/load.py at N=1 on the baseline path: a completed call with plausible metrics.

Checks presence and sanity only (completion, positive latencies, server CPU measured),
never timings: the machine is shared and the figures are the benchmark's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_load_harness_one_call_each_flow(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--paths", "remote",
           "--max-n", "1", "--seconds", "2", "--burst", "3", "--json", str(out)]  # fmt: skip
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "server CPU ms per call-second" in run.stdout
    assert "share this" in run.stdout  # the note that callers and server share the machine

    report = json.loads(out.read_text())
    path = report["paths"]["remote"]
    level = path["levels"][0]
    assert level["n"] == 1
    assert level["menu_calls"] == 1 and level["speech_calls"] == 1
    detail = {c["kind"]: c for c in level["calls_detail"]}
    # the menu call ran the whole menu; a speech call may rarely miss a word on a loaded
    # machine (the bot's record says nomatch): then it must still have taken the first one
    assert detail["menu"]["outcome"] == "completed", level["failures"]
    assert level["completed"] >= 1
    assert detail["speech"]["speech_next_ms"], level["failures"]
    assert level["server_cpu_ms_per_call_s"] > 0
    assert level["caller_cpu_ms_per_call_s"] > 0
    assert level["call_seconds"] > 2
    assert level["frames"] > 50
    assert 0 <= level["lateness_p50_ms"] <= level["lateness_p99_ms"]
    for key in ("dial_connected_p50_ms", "answer_first_audio_p50_ms", "key_next_p50_ms",
                "speech_next_p50_ms"):  # fmt: skip
        assert level[key] is not None and 0 < level[key] < 10_000, (key, level[key])
    assert len(detail["menu"]["key_next_ms"]) == 2  # both keys led to the next prompt
    assert path["implied_calls"] is not None and path["implied_calls"] > 0
    burst = path["burst"]
    assert burst["callers"] == 3
    assert burst["answered"] + burst["queued"] + burst["busy"] + burst["lost"] == 3
    assert burst["answered"] >= 1
