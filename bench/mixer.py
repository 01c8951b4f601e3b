"""Mixer benchmark: CPU per 20 ms tick and per participant-second, 3 / 5 / 10 members.

Two cases, each the median of several runs of 500 ticks:

- mix: PCM in, PCM out (``Mixer.feed`` + ``Mixer.tick``; what a media worker would run);
- with legs: what the gateway runs per leg on top: a received stereo Opus-decoded frame
  to mono (``MonoConverter``), each member's mix into an av frame and onto its
  ``OutboundAudio`` (codec work and aiortc's own packet handling are not included).

Run: .venv/bin/python bench/mixer.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av
import numpy as np

from ivrbot.core.mixer import Mixer, MonoConverter
from ivrbot.media.frames import WIRE_RATE, WIRE_SAMPLES, frame_from_pcm
from ivrbot.media.tracks import OutboundAudio

TICKS = 500
RUNS = 7
SIZES = (3, 5, 10)
TICKS_PER_S = round(1 / 0.02)


def stereo_frame(seed: int) -> av.AudioFrame:
    """A frame like aiortc's Opus decoder gives: packed s16 stereo, 48 kHz, 20 ms."""
    rng = np.random.default_rng(seed)
    mono = rng.integers(-8000, 8000, WIRE_SAMPLES, dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(
        np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = WIRE_RATE
    return frame


def run_mix_only(n: int) -> float:
    """CPU seconds for TICKS ticks of feed + mix with no-op sinks."""
    mixer = Mixer()
    rng = np.random.default_rng(n)
    inputs = [rng.integers(-8000, 8000, WIRE_SAMPLES, dtype=np.int16) for _ in range(n)]
    members = [mixer.add(f"m{i}", lambda pcm: None) for i in range(n)]
    start = time.process_time()
    for _ in range(TICKS):
        for member, pcm in zip(members, inputs, strict=True):
            member.feed(pcm.copy())
        mixer.tick()
    return time.process_time() - start


def run_with_legs(n: int) -> float:
    """CPU seconds for TICKS ticks including the per-leg frame conversions."""
    mixer = Mixer()
    outs = [OutboundAudio() for _ in range(n)]
    frames = [stereo_frame(i) for i in range(n)]
    converters = [MonoConverter() for _ in range(n)]

    def sink_for(out: OutboundAudio) -> object:
        return lambda pcm: out.push(frame_from_pcm(pcm, 0))

    members = [mixer.add(f"m{i}", sink_for(outs[i])) for i in range(n)]  # type: ignore[arg-type]
    start = time.process_time()
    for _ in range(TICKS):
        for member, frame, convert in zip(members, frames, converters, strict=True):
            member.feed(convert(frame))
        mixer.tick()
        for out in outs:
            out.clear_bridged()  # what the track's paced recv() takes every 20 ms
    elapsed = time.process_time() - start
    for out in outs:
        out.stop()
    return elapsed


async def main() -> None:
    rows = []
    for n in SIZES:
        run_mix_only(n), run_with_legs(n)  # warm up
        mix = statistics.median(run_mix_only(n) for _ in range(RUNS))
        legs = statistics.median(run_with_legs(n) for _ in range(RUNS))
        rows.append((n, mix, legs))
    print(f"Mixer CPU, median of {RUNS} runs of {TICKS} ticks (20 ms each)\n")
    header = (
        f"{'members':>7} | {'mix ms/tick':>11} | {'mix ms/participant-s':>20} | "
        f"{'+legs ms/tick':>13} | {'+legs ms/participant-s':>22} | {'tick budget used':>16}"
    )
    print(header)
    print("-" * len(header))
    for n, mix, legs in rows:
        mix_tick, legs_tick = mix / TICKS * 1e3, legs / TICKS * 1e3
        print(
            f"{n:>7} | {mix_tick:>11.3f} | {mix_tick * TICKS_PER_S / n:>20.2f} | "
            f"{legs_tick:>13.3f} | {legs_tick * TICKS_PER_S / n:>22.2f} | "
            f"{legs_tick / 20:>15.1%}"
        )
    print(
        "\nper participant-second = CPU ms per second of one member in the conference;"
        "\ncompare an aiortc leg's own cost of 80-115 ms per leg-second (docs/facts.md)."
    )


if __name__ == "__main__":
    asyncio.run(main())
