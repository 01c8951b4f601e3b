"""CPU cost of the in-band DTMF detector (ivrbot.media.dtmf.DtmfDetector).

Prints milliseconds of CPU per second of audio at 8, 16 and 48 kHz (median of several
runs), feeding 20 ms chunks (one RTP packet, the gateway's case) and 1 s chunks.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/dtmf.py [--seconds 20] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # FACTS: BLAS threads fight over cores

import numpy as np

from ivrbot.media.dtmf import DIGITS, DtmfDetector, tones


def test_signal(rate: int, seconds: float) -> np.ndarray:
    """Digits every few hundred ms over noise, so every code path runs."""
    rng = np.random.default_rng(0)
    n = int(rate * seconds)
    noise = rng.normal(0.0, 300.0, n)
    digits = tones(DIGITS, rate, 80, 120, -12.0).astype(np.float64)
    signal = np.zeros(n)
    for start in range(0, n - digits.size, digits.size * 2):
        signal[start : start + digits.size] = digits
    return np.clip(signal + noise, -32768, 32767).astype(np.int16)


def cpu_ms_per_second(pcm: np.ndarray, rate: int, chunk: int) -> float:
    detector = DtmfDetector(rate)
    start = time.process_time()
    found = 0
    for i in range(0, pcm.size, chunk):
        found += len(detector.feed(pcm[i : i + chunk]))
    elapsed = time.process_time() - start
    assert found > 0
    return elapsed * 1000.0 / (pcm.size / rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="audio per run")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    print(f"DtmfDetector CPU, ms per audio second (median of {args.runs} runs)")
    print(f"{'rate':>7} | {'20 ms chunks':>12} | {'1 s chunks':>10}")
    print(f"{'-' * 7}-+-{'-' * 12}-+-{'-' * 10}")
    for rate in (8000, 16000, 48000):
        pcm = test_signal(rate, args.seconds)
        cpu_ms_per_second(pcm[: rate // 2], rate, rate // 50)  # warm-up
        small = statistics.median(
            cpu_ms_per_second(pcm, rate, rate // 50) for _ in range(args.runs)
        )
        large = statistics.median(cpu_ms_per_second(pcm, rate, rate) for _ in range(args.runs))
        print(f"{rate:>7} | {small:>12.2f} | {large:>10.2f}")


if __name__ == "__main__":
    main()
