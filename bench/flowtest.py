"""The flow test kit (ivrbot.testing.flowtest): real time per call through the example flows.

Each row is one scripted call (the same scripts as tests/testing/test_example_flows.py),
run many times: the median and the 95th percentile of its real time, and how long the call
took on the virtual clock (prompts at 0.4 s a word, the timeouts it waited out).

    .venv/bin/python bench/flowtest.py [--runs 200]   (PYTHONPATH=. from a worktree)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ivrbot.flow.loader import load_flow_file
from ivrbot.testing.flowtest import FlowResult, FlowTest

FLOWS = Path(__file__).resolve().parents[1] / "flows"
bank, conference, reminder, survey, voicemail, welcome = (
    load_flow_file(FLOWS / f"{name}.py", check_model=False)
    for name in ("bank", "conference", "reminder", "survey", "voicemail", "welcome")
)

CALLS: dict[str, Callable[[], FlowTest]] = {
    "welcome: key, word, silence": lambda: FlowTest(welcome).press("5").say("예약"),
    "bank: wrong key, balance, hang-up": lambda: (
        FlowTest(bank).press("9").press("1").press("123456#").hangup()
    ),
    "bank: no agent, voicemail": lambda: (
        FlowTest(bank).press("2").transfer_answers(False).say("call me back")
    ),
    "survey: all three answers": lambda: (
        FlowTest(survey).press("4").say("아니요").say("예약 메뉴 좋아요")
    ),
    "reminder: opt out": lambda: FlowTest(reminder).press("9"),
    "voicemail: closed, a message": lambda: FlowTest(
        voicemail, env={"IVRBOT_NOW": "2025-01-11T20:00"}
    ).say("hello"),
    "conference: short PIN, then a room": lambda: (
        FlowTest(conference).press("12#").press("1234").conference_joins(True)
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    print(f"{'call':<38} {'steps':>5} {'median ms':>10} {'p95 ms':>8} {'virtual s':>10}")
    for name, make in CALLS.items():
        times, result = [], None
        for _ in range(runs):
            test = make()
            began = time.perf_counter()
            result = test.run()
            times.append((time.perf_counter() - began) * 1000)
        assert isinstance(result, FlowResult)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:<38} {len(result.path):>5} {statistics.median(times):>10.2f} {p95:>8.2f} "
              f"{result.elapsed_s:>10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
