"""The per-packet layer over aiortc (ivrbot/endpoints/webrtc/hotpath.py): process CPU per leg-second,
aiortc's own path vs ivrbot's, on the same machine in the same run.

Each variant runs in a fresh process (the layer patches aiortc for the whole process): P
pairs of real peer connections on 127.0.0.1 send each other 20 ms-paced audio for S seconds
and read every received frame, as a gateway leg does; CPU time is the process's own
(getrusage), so callers of other work on the machine do not count. Runs alternate between
the variants and the table shows medians.

Two workloads: ``tone`` (a live tone both ways: every frame is encoded) for aiortc as
shipped vs the layer, and ``ivr`` (what a bot's leg sends: a 2 s cached prompt, then 1 s of
silence, over and over, from ivrbot's ``OutboundAudio``) with every frame encoded (``live``)
vs cached prompts and silence sent pre-encoded and repeated silence not decoded
(``preencoded``).

Run: .venv/bin/python bench/hotpath.py [--pairs 4] [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ivr_prompt() -> object:
    """A 2 s stand-in for a cached TTS prompt: read-only over bytes, as the cache holds one."""
    import numpy as np

    t = np.arange(96000) / 48000
    voice = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 710.0, 1330.0, 2450.0))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)  # syllables
    pcm = (2500 * voice * envelope).astype(np.int16)
    return np.frombuffer(pcm.tobytes(), np.int16)


async def speak(track: object, prompt: object) -> None:
    from ivrbot.media.tracks import OutboundAudio

    assert isinstance(track, OutboundAudio)
    while True:
        await track.play(prompt, 48000)  # type: ignore[arg-type]
        await asyncio.sleep(1.0)


async def one_run(pairs: int, seconds: float, workload: str = "tone") -> dict[str, float]:
    from aiortc import MediaStreamTrack

    from ivrbot.endpoints.webrtc.peer import new_peer_connection
    from ivrbot.media.tracks import OutboundAudio
    from tests.endpoints.webrtc.test_rfc4733 import SineTrack, negotiate

    pcs = []
    frames = 0

    async def drain(track: MediaStreamTrack) -> None:
        nonlocal frames
        while True:
            await track.recv()
            frames += 1

    readers: list[asyncio.Task[None]] = []
    prompt = ivr_prompt()
    for _ in range(pairs):
        a, b = new_peer_connection(), new_peer_connection()
        pcs += [a, b]
        for pc, freq in ((a, 440.0), (b, 660.0)):
            if workload == "tone":
                pc.addTrack(SineTrack(freq))
            else:
                out = OutboundAudio()
                pc.addTrack(out)
                readers.append(asyncio.ensure_future(speak(out, prompt)))
            pc.on("track", lambda t: readers.append(asyncio.ensure_future(drain(t))))
        await negotiate(a, b)
    await asyncio.sleep(2.0)  # ICE, DTLS, jitter buffers primed
    c0, f0, t0 = cpu_s(), frames, time.monotonic()
    await asyncio.sleep(seconds)
    c1, f1, t1 = cpu_s(), frames, time.monotonic()
    for task in readers:
        task.cancel()
    for pc in pcs:
        await pc.close()
    leg_seconds = 2 * pairs * (t1 - t0)
    return {
        "cpu_ms_per_leg_s": 1000 * (c1 - c0) / leg_seconds,
        "frames_per_leg_s": (f1 - f0) / leg_seconds,
    }


VARIANTS = {  # name: (workload, label)
    "aiortc": ("tone", "tone: aiortc 1.16 as shipped"),
    "ivrbot": ("tone", "tone: with ivrbot's hot path"),
    "live": ("ivr", "ivr: hot path, every frame encoded"),
    "preencoded": ("ivr", "ivr: + pre-encoded prompts/silence"),
}


def child(variant: str, pairs: int, seconds: float) -> None:
    from ivrbot.endpoints.webrtc import hotpath

    if variant == "aiortc":  # the layer is installed by rfc4733.install(): keep it out
        hotpath._installed = True  # install() becomes a no-op: aiortc's own per-packet path
    hotpath.PREENCODE = variant != "live"  # live: every frame encoded and decoded
    print(json.dumps(asyncio.run(one_run(pairs, seconds, VARIANTS[variant][0]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", choices=list(VARIANTS))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.pairs, args.seconds)
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in args.variants.split(",")}
    for _ in range(args.runs):
        for variant in results:
            cmd = [sys.executable, __file__, "--child", variant, "--pairs", str(args.pairs),
                   "--seconds", str(args.seconds)]  # fmt: skip
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            results[variant].append(json.loads(out.strip().splitlines()[-1]))
    med = {
        v: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        for v, runs in results.items()
    }
    print(f"hot path: {args.pairs} pairs ({2 * args.pairs} legs), {args.seconds:g} s, "
          f"median of {args.runs} runs each")  # fmt: skip
    print(f"{'path':<38}{'CPU ms per leg-second':>24}{'frames/leg-s':>14}{'runs':>22}")
    for variant, runs in results.items():
        spread = "/".join(f"{r['cpu_ms_per_leg_s']:.1f}" for r in runs)
        print(f"{VARIANTS[variant][1]:<38}{med[variant]['cpu_ms_per_leg_s']:>24.1f}"
              f"{med[variant]['frames_per_leg_s']:>14.1f}{spread:>22}")  # fmt: skip
    for new, old in (("ivrbot", "aiortc"), ("preencoded", "live"), ("preencoded", "aiortc")):
        if new in med and old in med:
            ratio = med[new]["cpu_ms_per_leg_s"] / med[old]["cpu_ms_per_leg_s"]
            print(f"{'ratio ' + new + ' / ' + old:<38}{ratio:>24.2f}")


if __name__ == "__main__":
    main()
