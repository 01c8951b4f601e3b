"""Soak: what the process holds as calls go by (memory, threads, descriptors, tasks).

Runs short calls one after another through a real gateway and bot on 127.0.0.1 (see
ivrbot/testing/soak.py: dial, greeting, a key press, hang up) and prints, every 100 calls,
resident memory, OS threads, open descriptors, live asyncio tasks and live peer
connections (each after a garbage collection), then the growth per call after the warm-up.

    .venv/bin/python bench/soak.py [--calls 300] [--every 100] [--warm-up 20] [--no-model]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # FACTS: BLAS threads fight over cores

import vosk

from ivrbot.speech.speech_model import load_model
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.soak import Sample, per_call, soak


async def run(calls: int, every: int, warm_up: int, use_model: bool) -> None:
    model: vosk.Model | None = None
    if use_model:
        try:
            model = await load_model()
        except Exception as exc:  # no model installed: keys only
            print(f"(no speech model: {exc}; calls take keys only)")
    with tempfile.TemporaryDirectory(prefix="ivrbot-soak-") as tmp:
        async with Synthesizer(Path(tmp) / "prompts") as tts:
            rows: list[Sample] = []
            step = min(every, warm_up) if warm_up else every
            print(
                f"Soak: {calls} calls in a row, one at a time "
                f"({'grammar recogniser turn, ' if model else ''}RFC 4733 key, two prompts)\n"
            )
            header = (
                f"{'calls':>6} | {'RSS MB':>8} | {'threads':>7} | {'fds':>4} | "
                f"{'tasks':>5} | {'peers':>5} | {'keys ok':>7} | {'s/call':>6}"
            )
            print(header)
            print("-" * len(header))
            async for s in soak(calls, step, tts, model, db=str(Path(tmp) / "gateway.db")):
                rows.append(s)
                if s.calls in (0, warm_up, calls) or s.calls % every == 0:
                    rate = s.elapsed_s / s.calls if s.calls else 0.0
                    print(
                        f"{s.calls:>6} | {s.rss_mb:>8.1f} | {s.threads:>7} | {s.fds:>4} | "
                        f"{s.tasks:>5} | {s.peers:>5} | {s.keys_taken:>7} | {rate:>6.2f}",
                        flush=True,
                    )
    if rows[-1].calls <= warm_up:
        return
    growth = per_call(rows, warm_up)
    base = next(s for s in rows if s.calls >= warm_up)
    print(f"\nper call after the warm-up ({base.calls} -> {rows[-1].calls} calls):")
    print(
        f"  RSS {growth['rss_mb'] * 1024:+.1f} KB, threads {growth['threads']:+.3f}, "
        f"fds {growth['fds']:+.3f}, tasks {growth['tasks']:+.3f}, "
        f"peers {growth['peers']:+.3f}"
    )
    print("  (the soak test's bound: RSS < 0.1 MB per call, the others flat)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--every", type=int, default=100, help="a table row every N calls")
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--no-model", action="store_true", help="no speech recogniser turns")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.calls, args.every, args.warm_up, not args.no_model))


if __name__ == "__main__":
    main()
