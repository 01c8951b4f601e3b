"""RTP floor benchmark: N G.711 RTP legs in one process on 127.0.0.1, paired (each sends to
its partner), each sending a pre-encoded 20 ms PCMA payload from one shared 20 ms tick and
receiving, checking and decoding (numpy G.711 table) 50 packets/s. Prints CPU ms per
leg-second (process CPU time / (N x seconds)), p50/p99 lateness of the shared tick and loss,
with asyncio's loop and with uvloop when installed. FACTS' floor (audioop, same shape):
1.65 ms asyncio, 0.61 ms uvloop per leg-second at 100 legs.

Then the same N as call-core endpoints (RtpLeg: 48 kHz frames from ``out`` resampled
and encoded, received packets handed on as frames): what a leg costs above the floor.

Run: .venv/bin/python bench/rtp.py [--seconds 8] [--levels 10,50,100]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from ivrbot.endpoints.rtp import RtpLeg, RtpSession, g711
from ivrbot.endpoints.rtp.session import FRAME_SAMPLES
from ivrbot.testing.audio import sine

TICK_S = 0.020
TONE_48K = sine(1000, 1.0)


async def run_level(legs: int, seconds: float) -> dict[str, float]:
    sessions = [await RtpSession.open(law="PCMA") for _ in range(legs)]
    for i, session in enumerate(sessions):
        session.remote = sessions[i ^ 1].local_address
        session.on_pcm = lambda pcm: None  # decoded; the bridge would take it from here
    payloads = [
        g711.encode(chunk, "PCMA") for chunk in sine(1000, 1.0, 8000).reshape(-1, FRAME_SAMPLES)
    ]
    lateness: list[float] = []
    warmup = int(1.0 / TICK_S)
    ticks = warmup + int(seconds / TICK_S)
    start = time.monotonic()  # not loop.time(): uvloop's counts whole milliseconds
    cpu0 = wall0 = 0.0
    rx0 = 0
    for k in range(ticks):
        if k == warmup:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            lateness.clear()
            rx0 = sum(session.received for session in sessions)
        due = start + k * TICK_S
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        lateness.append(max(0.0, time.monotonic() - due))
        payload = payloads[k % len(payloads)]
        for session in sessions:
            session.send_payload(payload)
    await asyncio.sleep(0.1)  # the last packets in flight
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    counts = [s.counts for s in sessions]
    for session in sessions:
        session.close()
    sent = sum(c.sent for c in counts)
    lost = sum(c.lost for c in counts) + max(0, sent - sum(c.received for c in counts))
    late = np.array(lateness) * 1000
    return {
        "cpu_ms": cpu * 1000 / (legs * wall),
        "p50": float(np.percentile(late, 50)),
        "p99": float(np.percentile(late, 99)),
        "loss": lost / max(1, sent),
        "rx": (sum(c.received for c in counts) - rx0) / (legs * wall),
    }


async def run_legs(legs: int, seconds: float) -> dict[str, float]:
    """The same with call-core endpoints (RtpLeg): each paces its own ``out`` (a looped
    48 kHz tone, every frame resampled to 8 kHz and encoded) and hands on each received
    packet as an 8 kHz frame; no bridge behind it."""
    pairs = [await RtpLeg.open(f"leg{i}", law="PCMA") for i in range(legs)]
    for i, leg in enumerate(pairs):
        leg.session.remote = pairs[i ^ 1].session.local_address
        leg.on_frame = lambda frame: None
        leg.out.play(TONE_48K, loop=True)
    await asyncio.sleep(1.0)
    rx0, sent0 = sum(leg.session.received for leg in pairs), sum(leg.session.sent for leg in pairs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rx = sum(leg.session.received for leg in pairs) - rx0
    sent = sum(leg.session.sent for leg in pairs) - sent0
    for leg in pairs:
        await leg.close()
    return {
        "cpu_ms": cpu * 1000 / (legs * wall),
        "sent": sent / (legs * wall),
        "rx": rx / (legs * wall),
    }


def loops() -> list[
    tuple[str, Callable[[Coroutine[Any, Any, dict[str, float]]], dict[str, float]]]
]:
    found: list[tuple[str, Callable[[Coroutine[Any, Any, dict[str, float]]], dict[str, float]]]] = [
        ("asyncio", asyncio.run)
    ]
    try:
        import uvloop
    except ImportError:
        print("(uvloop not installed: pip install uvloop for its rows)")
    else:
        found.append(("uvloop", uvloop.run))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--levels", default="10,50,100")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    print(
        f"{'loop':8} {'legs':>5} {'CPU ms/leg-s':>13} {'p50 late ms':>12} {'p99 late ms':>12} {'loss':>7} {'rx/leg-s':>9}"
    )
    for name, run in loops():
        for legs in levels:
            r = run(run_level(legs, args.seconds))
            print(
                f"{name:8} {legs:>5} {r['cpu_ms']:>13.2f} {r['p50']:>12.2f} {r['p99']:>12.2f}"
                f" {r['loss']:>7.2%} {r['rx']:>9.1f}"
            )
    print()
    print(f"{'RtpLeg':8} {'legs':>5} {'CPU ms/leg-s':>13} {'tx/leg-s':>9} {'rx/leg-s':>9}")
    for name, run in loops():
        for legs in levels:
            r = run(run_legs(legs, args.seconds))
            print(f"{name:8} {legs:>5} {r['cpu_ms']:>13.2f} {r['sent']:>9.1f} {r['rx']:>9.1f}")
    print("FACTS floor (100 legs, audioop decode): 1.65 ms asyncio, 0.61 ms uvloop")


if __name__ == "__main__":
    main()
