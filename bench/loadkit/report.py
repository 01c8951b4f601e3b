"""Summaries of the load harness's calls, and the table baseline vs new."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from loadkit.caller import CallResult

LATENESS_LIMIT_MS = 40.0


def pct(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    arr = np.asarray(values, np.float64)
    return round(float(np.percentile(arr, q)), 1) if arr.size else None


def summarise_level(
    n: int, results: list[CallResult], server_cpu_s: float, caller_cpu_s: float, wall_s: float
) -> dict[str, Any]:
    """One level: N menu calls (+ speech calls) at once."""
    done = [r for r in results if r.outcome == "completed"]
    call_s = sum(r.call_s for r in results)
    lateness = np.concatenate([r.lateness_ms for r in results] or [np.zeros(0, np.float32)])
    by_kind = {k: [r for r in results if r.kind == k] for k in ("menu", "speech")}
    level: dict[str, Any] = {
        "n": n,
        "calls": len(results),
        "menu_calls": len(by_kind["menu"]),
        "speech_calls": len(by_kind["speech"]),
        "completed": len(done),
        "completion": round(len(done) / len(results), 3) if results else 0.0,
        "call_seconds": round(call_s, 1),
        "wall_s": round(wall_s, 1),
        "server_cpu_ms_per_call_s": round(server_cpu_s * 1000 / call_s, 1) if call_s else None,
        "caller_cpu_ms_per_call_s": round(caller_cpu_s * 1000 / call_s, 1) if call_s else None,
        "lateness_p50_ms": pct(lateness, 50),
        "lateness_p99_ms": pct(lateness, 99),
        "frames": int(lateness.size),
        "lateness_with_startup_p99_ms_max": max(
            (r.lateness_all_p99_ms for r in results if r.lateness_all_p99_ms is not None),
            default=None,
        ),
        "dial_connected_p50_ms": pct(
            [r.dial_connected_ms for r in results if r.dial_connected_ms is not None], 50
        ),
        "answer_first_audio_p50_ms": pct(
            [r.answer_first_audio_ms for r in results if r.answer_first_audio_ms is not None], 50
        ),
        "answer_first_audio_p99_ms": pct(
            [r.answer_first_audio_ms for r in results if r.answer_first_audio_ms is not None], 99
        ),
        "key_next_p50_ms": pct([v for r in by_kind["menu"] for v in r.key_next_ms], 50),
        "key_next_p99_ms": pct([v for r in by_kind["menu"] for v in r.key_next_ms], 99),
        "speech_next_p50_ms": pct([v for r in by_kind["speech"] for v in r.speech_next_ms], 50),
        "speech_next_p99_ms": pct([v for r in by_kind["speech"] for v in r.speech_next_ms], 99),
        "failures": sorted(
            {f"{r.kind} {r.outcome}: {r.detail}"[:160] for r in results if r.outcome != "completed"}
        ),
    }
    p99 = level["lateness_p99_ms"]
    level["passed"] = bool(
        results and len(done) == len(results) and p99 is not None and p99 < LATENESS_LIMIT_MS
    )
    return level


def summarise_burst(results: list[CallResult]) -> dict[str, Any]:
    count = {
        o: sum(r.outcome == o for r in results) for o in ("answered", "queued", "busy", "lost")
    }
    return {
        "callers": len(results),
        **count,
        "answered_after_ringback": sum(r.outcome == "answered" and r.rang_first for r in results),
        "dial_connected_p50_ms": pct(
            [r.dial_connected_ms for r in results if r.dial_connected_ms is not None], 50
        ),
        "dial_connected_max_ms": round(
            max([r.dial_connected_ms for r in results if r.dial_connected_ms is not None] or [0.0]),
            1,
        ),
        "lost_reasons": sorted({r.detail[:120] for r in results if r.outcome == "lost"}),
    }


def conclude(path: dict[str, Any], cores: int) -> None:
    """Largest passing N, the level the figures come from, and the capacity it implies."""
    levels = path["levels"]
    passed = [lv for lv in levels if lv["passed"]]
    path["largest_n"] = max((lv["n"] for lv in passed), default=0)
    basis = passed[-1] if passed else (levels[0] if levels else None)
    cpu = basis["server_cpu_ms_per_call_s"] if basis else None
    path["capacity_basis_n"] = basis["n"] if basis else None
    path["implied_calls"] = int(cores * 1000 // cpu) if cpu else None


# the table ---------------------------------------------------------------------------------------
ROWS: list[tuple[str, str, str]] = [
    # (label, key in a level, how a lower value compares: 'lower' is better or '' no ratio)
    ("server CPU ms per call-second", "server_cpu_ms_per_call_s", "lower"),
    ("caller CPU ms per call-second (not the server)", "caller_cpu_ms_per_call_s", "lower"),
    ("completion", "completion", ""),
    ("frame lateness p50 ms", "lateness_p50_ms", "lower"),
    ("frame lateness p99 ms", "lateness_p99_ms", "lower"),
    ("dial -> connected p50 ms", "dial_connected_p50_ms", "lower"),
    ("answer -> first prompt audio p50 ms", "answer_first_audio_p50_ms", "lower"),
    ("answer -> first prompt audio p99 ms", "answer_first_audio_p99_ms", "lower"),
    ("key -> next prompt audio p50 ms", "key_next_p50_ms", "lower"),
    ("key -> next prompt audio p99 ms", "key_next_p99_ms", "lower"),
    ("speech end -> next prompt audio p50 ms", "speech_next_p50_ms", "lower"),
    ("speech end -> next prompt audio p99 ms", "speech_next_p99_ms", "lower"),
]


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def _ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not a:
        return ""
    return f"{b / a:.2f}"


def table(report: dict[str, Any]) -> str:
    """Baseline vs new, side by side (the figures at the largest N both paths passed)."""
    paths = report["paths"]
    names = list(paths)
    base, new = (paths.get("remote"), paths.get("local"))
    common = min((p["largest_n"] for p in paths.values()), default=0)
    cols = [n for n in names]
    head = f"{'measure':48} " + " ".join(f"{c:>12}" for c in cols)
    if base and new:
        head += f" {'new/base':>9}"
    lines = [head, "-" * len(head)]

    def level_at(p: dict[str, Any], n: int) -> dict[str, Any] | None:
        found = [lv for lv in p["levels"] if lv["n"] == n]
        return found[0] if found else (p["levels"][0] if p["levels"] else None)

    def row(label: str, values: list[Any]) -> None:
        line = f"{label:48} " + " ".join(f"{_fmt(v):>12}" for v in values)
        if base and new and len(values) == 2:
            line += f" {_ratio(values[0], values[1]):>9}"
        lines.append(line.rstrip())

    at = common or 1
    lines.append(f"at N = {at} menu calls at once (+ speech calls, see below)")
    for label, key, _ in ROWS:
        row(label, [(level_at(p, at) or {}).get(key) for p in paths.values()])
    lines.append("")
    row(
        "largest N: 100 % completed, p99 lateness < 40 ms", [p["largest_n"] for p in paths.values()]
    )
    row("server CPU at that N, ms per call-second", [
        (level_at(p, p["capacity_basis_n"] or 1) or {}).get("server_cpu_ms_per_call_s")
        for p in paths.values()
    ])  # fmt: skip
    row(f"implied calls on {report['cores']} cores (cores*1000/cpu)", [
        p["implied_calls"] for p in paths.values()
    ])  # fmt: skip
    row("server idle CPU ms per second", [p.get("idle_cpu_ms_per_s") for p in paths.values()])
    bursts = [p.get("burst") or {} for p in paths.values()]
    if any(bursts):
        callers = max(b.get("callers", 0) for b in bursts)
        for key in ("answered", "queued", "busy", "lost"):
            row(f"burst of {callers}: {key.replace('_', ' ')}", [b.get(key) for b in bursts])
        row(f"burst of {callers}: dial -> connected p50 ms", [
            b.get("dial_connected_p50_ms") for b in bursts
        ])  # fmt: skip
    lines.append("")
    for name, p in paths.items():
        lines.append(f"{name} path ({p['label']}), per level:")
        lines.append(
            f"  {'N':>3} {'calls':>5} {'done':>5} {'cpu/cs':>7} {'caller':>7} {'late50':>7}"
            f" {'late99':>7} {'dial':>6} {'1st':>6} {'key':>6} {'speech':>6}  pass"
        )
        for lv in p["levels"]:
            lines.append(
                f"  {lv['n']:>3} {lv['calls']:>5} {lv['completed']:>5}"
                f" {_fmt(lv['server_cpu_ms_per_call_s']):>7} {_fmt(lv['caller_cpu_ms_per_call_s']):>7}"
                f" {_fmt(lv['lateness_p50_ms']):>7} {_fmt(lv['lateness_p99_ms']):>7}"
                f" {_fmt(lv['dial_connected_p50_ms']):>6} {_fmt(lv['answer_first_audio_p50_ms']):>6}"
                f" {_fmt(lv['key_next_p50_ms']):>6} {_fmt(lv['speech_next_p50_ms']):>6}"
                f"  {'yes' if lv['passed'] else 'NO'}"
            )
            for failure in lv["failures"][:4]:
                lines.append(f"      {failure}")
        if p.get("stopped"):
            lines.append(f"  stopped stepping: {p['stopped']}")
    return "\n".join(lines)
