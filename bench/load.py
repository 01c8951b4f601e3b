"""Load harness (issue 12): the server's cost and timing per call, today's path vs the new one.

For each path (``remote``: every bot is a Phone of its own gateway, today's baseline;
``local``: bots attached inside the gateway, chosen with ``IVRBOT_LOCAL_BOTS=1``) it
starts ``ivrbot run`` in its own process serving two flows written here (a DTMF menu and a
Korean speech-grammar menu), then places calls from caller processes:

- levels N = 1, 2, 4, 8 ...: N menu calls plus ceil(N/4) speech calls at once (dials
  spread over a short ramp), each running the whole menu; a level passes with 100 %
  completed and p99 frame lateness < 40 ms; stepping stops at the first failing level
  or when the time bound is reached;
- a burst: 30 callers dialling within one second: answered / queued / busy / lost.

Server CPU is read from /proc for the ``ivrbot run`` process and its children, never the
callers'. Quick by default (``make bench``); ``--full`` steps further.

Run: .venv/bin/python bench/load.py [--full] [--max-n N] [--seconds S] [--json FILE]
(``--speech-only``: levels of speech calls only, for the speech end -> next prompt latency)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from loadkit.caller import SETTLE_S, CallResult, CallSpec, worker_main
from loadkit.flows import MENU_NUMBER, SPEECH_NUMBER, write_flows
from loadkit.report import conclude, summarise_burst, summarise_level, table

CALLS_PER_WORKER = 4  # docs/facts.md: one process tops out near 8-10 aiortc legs
MAX_WORKERS = 8
WORDS = ("예약", "아니요")
PATHS = {  # name: (IVRBOT_LOCAL_BOTS, IVRBOT_MEDIA_WORKERS, label)
    "remote": ("0", "0", "baseline: each bot a remote Phone of the gateway"),
    "local": ("1", "0", "new: bots attached inside the gateway"),
    "workers": ("1", "2", "new: bots in 2 media worker processes"),
}


# the server ----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ppid, (utime + stime + cutime + cstime) / TICK


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and all its descendants (live ones, and reaped ones)."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo += children.get(pid, [])
    return total


class Server:
    """``ivrbot run <flows> --port P`` in its own process."""

    def __init__(self, flows: Path, work: Path, name: str) -> None:
        local_bots, workers, _ = PATHS[name]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / f"server-{name}.log"
        env = {
            **os.environ,
            "IVRBOT_DB": str(work / f"ivrbot-{name}.db"),
            "IVRBOT_LOCAL_BOTS": local_bots,
            "IVRBOT_MEDIA_WORKERS": workers,
            "IVRBOT_RATE_LIMIT": "0",  # every caller comes from 127.0.0.1
            "OPENBLAS_NUM_THREADS": "1",
        }
        self._out = open(self.log, "w")  # closed in stop()
        cmd = [sys.executable, "-m", "ivrbot", "run", str(flows), "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def cpu_s(self) -> float:
        return tree_cpu_s(self.proc.pid)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "loadspeech" in text and "ivrbot gateway on" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"ivrbot run exited ({self.proc.returncode}):\n{text[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"ivrbot run was not ready in {timeout_s:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


# the callers ---------------------------------------------------------------------------------
class Callers:
    """Caller worker processes, started once and reused by every level and path."""

    def __init__(self, speech: dict[str, np.ndarray]) -> None:
        self._ctx = mp.get_context("spawn")
        self._speech = speech
        self._results = self._ctx.Queue()
        self._workers: list[tuple[Any, Any]] = []  # (process, its job queue)
        self._job = 0
        self._starting = 0  # workers started and not yet ready

    def start(self, count: int) -> None:
        """Have ``count`` workers (at most MAX_WORKERS); new ones start in the background."""
        count = min(MAX_WORKERS, max(1, count))
        while len(self._workers) < count:
            jobs = self._ctx.Queue()
            proc = self._ctx.Process(
                target=worker_main,
                args=(len(self._workers), jobs, self._results, self._speech),
                daemon=True,
            )
            proc.start()
            self._workers.append((proc, jobs))
            self._starting += 1

    def _wait_ready(self) -> None:
        while self._starting:
            tag, *_ = self._results.get(timeout=120)
            assert tag == "ready", tag
            self._starting -= 1

    def run(
        self, url: str, specs: list[CallSpec], timeout_s: float
    ) -> tuple[list[CallResult], float]:
        """Place the calls (spread over workers); their results and the callers' CPU seconds."""
        self.start(-(-len(specs) // CALLS_PER_WORKER))
        self._wait_ready()
        self._job += 1
        shares: list[list[CallSpec]] = [[] for _ in self._workers]
        for i, spec in enumerate(specs):
            shares[i % len(shares)].append(spec)
        busy = [(w, share) for w, share in zip(self._workers, shares, strict=True) if share]
        for (_, jobs), share in busy:
            jobs.put((self._job, url, share))
        results: list[CallResult] = []
        cpu = 0.0
        for _ in busy:
            job, _, out, used = self._results.get(timeout=timeout_s)
            assert job == self._job, (job, self._job)
            results += out
            cpu += used
        return sorted(results, key=lambda r: r.id), cpu

    def close(self) -> None:
        for _, jobs in self._workers:
            jobs.put(None)
        for proc, _ in self._workers:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()


def synthesise_words() -> dict[str, np.ndarray]:
    """The words callers say, as espeak-ng's Korean voice says them, mono int16 at 48 kHz."""
    from ivrbot.media.frames import WIRE_RATE, resample
    from ivrbot.speech.tts import Synthesizer

    async def run() -> dict[str, np.ndarray]:
        async with Synthesizer(Path(tempfile.mkdtemp(prefix="ivrbot-load-tts-"))) as synth:
            prompts = {w: await synth.synth(w, voice="ko") for w in WORDS}
        return {w: resample(p.pcm, p.sample_rate, WIRE_RATE) for w, p in prompts.items()}

    return asyncio.run(run())


# one path --------------------------------------------------------------------------------------
def level_specs(
    n: int, hold_s: float, start: float, id0: int, speech_only: bool = False
) -> list[CallSpec]:
    """N menu calls and ceil(N/4) speech calls (spread among them), dials over a ramp;
    with ``speech_only`` N speech calls and no menu call."""
    speech = n if speech_only else -(-n // 4)
    total = speech if speech_only else n + speech
    ramp = min(0.25 * total, 5.0)
    speech_at = {min(total - 1, j * total // speech + 1) for j in range(speech)}
    specs = []
    for i in range(total):
        kind = "speech" if speech_only or i in speech_at else "menu"
        number = SPEECH_NUMBER if kind == "speech" else MENU_NUMBER
        specs.append(CallSpec(id0 + i, kind, number, start + ramp * i / total, hold_s))
    return specs


def run_path(
    name: str, args: argparse.Namespace, callers: Callers, flows: Path, work: Path
) -> dict[str, Any]:
    local_bots, workers, label = PATHS[name]
    env = {"IVRBOT_LOCAL_BOTS": local_bots, "IVRBOT_MEDIA_WORKERS": workers}
    out: dict[str, Any] = {"label": label, "env": env, "levels": []}
    server = Server(flows, work, name)
    ids = iter(range(1, 1_000_000))
    try:
        t0 = time.monotonic()
        server.wait_ready()
        out["server_start_s"] = round(time.monotonic() - t0, 1)
        print(f"[{name}] server up in {out['server_start_s']} s at {server.url}", flush=True)

        # warm up: one call of each flow (first calls pay for imports, recognisers, ...)
        # (with media workers: as many of each at once as there are workers, one on each)
        warm = [
            CallSpec(next(ids), kind, number, time.time() + 1.0)
            for kind, number in (("menu", MENU_NUMBER), ("speech", SPEECH_NUMBER))
            if kind == "speech" or not args.speech_only
            for _ in range(max(1, int(workers)))
        ]
        results, _ = callers.run(server.url, warm, 120)
        out["warmup"] = [r.to_dict() for r in results]
        print(f"[{name}] warm-up: {[r.outcome for r in results]}", flush=True)

        c0 = server.cpu_s()
        time.sleep(2.0)
        out["idle_cpu_ms_per_s"] = round((server.cpu_s() - c0) * 1000 / 2.0, 1)

        began = time.monotonic()
        n = 1
        last_wall = 0.0
        while n <= args.max_n:
            if time.monotonic() - began + max(last_wall, 15.0) > args.budget_s:
                out["stopped"] = f"time bound ({args.budget_s:.0f} s) before N={n}"
                break
            specs = level_specs(
                n, args.seconds, time.time() + 1.5 + 0.05 * n, next(ids) * 1000, args.speech_only
            )
            c0, w0 = server.cpu_s(), time.monotonic()
            results, caller_cpu = callers.run(server.url, specs, args.seconds + 180)
            wall = time.monotonic() - w0
            server_cpu = server.cpu_s() - c0
            level = summarise_level(n, results, server_cpu, caller_cpu, wall)
            level["calls_detail"] = [r.to_dict() for r in results]
            out["levels"].append(level)
            last_wall = wall
            print(
                f"[{name}] N={n}: {level['completed']}/{level['calls']} completed,"
                f" server {level['server_cpu_ms_per_call_s']} ms/call-s,"
                f" p99 lateness {level['lateness_p99_ms']} ms, {wall:.0f} s",
                flush=True,
            )
            if not level["passed"]:
                out["stopped"] = f"N={n} failed"
                break
            n *= 2
        else:
            out["stopped"] = f"reached --max-n {args.max_n}"

        if args.burst:
            start = time.time() + 2.0 + 0.05 * args.burst
            specs = [
                CallSpec(next(ids) * 1000 + i, "burst", MENU_NUMBER,
                         start + i / args.burst, answer_wait_s=args.burst_wait)
                for i in range(args.burst)
            ]  # fmt: skip
            results, _ = callers.run(server.url, specs, args.burst_wait + 120)
            out["burst"] = summarise_burst(results)
            b = out["burst"]
            print(
                f"[{name}] burst of {args.burst}: {b['answered']} answered, {b['queued']} queued,"
                f" {b['busy']} busy, {b['lost']} lost",
                flush=True,
            )
    finally:
        server.stop()
    out["server_log_tail"] = server.log.read_text(errors="replace")[-1500:]
    conclude(out, os.cpu_count() or 1)
    return out


def local_bots_supported() -> bool:
    from ivrbot.config import Settings

    return "local_bots" in {f.name for f in dataclasses.fields(Settings)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small run (the default)")
    mode.add_argument("--full", action="store_true", help="step N up to --max-n (default 64)")
    parser.add_argument("--max-n", type=int, help="largest level (quick 4, full 64)")
    parser.add_argument("--seconds", type=float, help="a call's last input no sooner than this "
                        "after the answer (quick 4, full 15)")  # fmt: skip
    parser.add_argument("--budget-s", type=float, help="time bound per path for the levels "
                        "(quick 60, full 600)")  # fmt: skip
    parser.add_argument("--burst", type=int, default=30, help="callers in the burst (0: none)")
    parser.add_argument("--burst-wait", type=float, default=10.0,
                        help="a burst caller waits this long for an answer")  # fmt: skip
    parser.add_argument("--paths", default="remote,local,workers",
                        help="any of remote, local, workers (comma-separated)")  # fmt: skip
    parser.add_argument("--speech-only", action="store_true",
                        help="level N = N speech calls, no menu calls (speech latency)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    full = args.full
    args.max_n = args.max_n or (64 if full else 4)
    args.seconds = args.seconds if args.seconds is not None else (15.0 if full else 4.0)
    args.budget_s = args.budget_s or (600.0 if full else 60.0)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    for p in paths:
        if p not in PATHS:
            parser.error(f"unknown path {p!r}: remote, local or workers")

    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ivrbot-load-"))
    flows = work / "flows"
    write_flows(flows, args.seconds)
    callers = Callers(synthesise_words())
    report: dict[str, Any] = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "cores": os.cpu_count() or 1,
        "mode": "full" if full else "quick",
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "local_bots_supported": local_bots_supported(),
        "paths": {},
    }
    try:
        callers.start(max(2, -(-args.burst // CALLS_PER_WORKER)))
        for p in paths:
            report["paths"][p] = run_path(p, args, callers, flows, work)
    finally:
        callers.close()
    report["took_s"] = round(time.monotonic() - t0, 1)
    notes = [
        f"Callers share this {report['cores']}-core machine with the server; server CPU is the"
        " `ivrbot run` process and its children only (/proc), callers' CPU is reported apart.",
        "Implied calls = cores * 1000 / server CPU ms per call-second at the largest passing N:"
        " what the server's measured cost implies, not a measured load.",
        (
            "Level N = N speech calls at once"
            if args.speech_only
            else "Level N = N DTMF-menu calls + ceil(N/4) speech calls at once"
        )
        + "; lateness = frame"
        " arrival at the caller vs the 20 ms schedule of its RTP timestamps (0 = earliest),"
        f" leaving out each stream's first {SETTLE_S} s (JSON: the worst call's p99 with it).",
    ]
    if args.burst:
        notes.append(
            f"Burst: {args.burst} callers dial within one second; an answered caller hears the"
            f" first prompt, stays 1 s and hangs up; one still ringing after {args.burst_wait:g} s"
            " is 'queued' (then cancels); 'lost' = ended unanswered for another reason than busy."
        )
    if not report["local_bots_supported"] and "local" in paths:
        notes.append(
            "IVRBOT_LOCAL_BOTS is not read by this ivrbot yet (no Settings.local_bots):"
            " the 'local' column ran the baseline path too."
        )
    report["notes"] = notes
    print()
    print(table(report))
    print()
    for note in notes:
        print(f"note: {note}")
    print(f"(bench took {report['took_s']:.0f} s on {report['cores']} cores)")
    if args.json:
        slim = json.loads(json.dumps(report, default=str))
        args.json.write_text(json.dumps(slim, indent=2, ensure_ascii=False))
    return report


if __name__ == "__main__":
    main()
