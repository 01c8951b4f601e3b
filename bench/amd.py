"""Answering-machine and beep detection (ivrbot.media.amd): CPU cost and decision latency.

CPU: milliseconds of CPU per second of audio fed in 20 ms chunks (median of several runs),
for the AMD while it is still deciding (a 5 s signal that ends in TOOLONG, so every frame
is analysed) and for the beep detector over speech with a beep, at 8, 16 and 48 kHz.

Latency: for espeak-ng samples at 16 kHz, when the AMD decided relative to the speech
(human: after the last loud sample; machine: after the first one), and when the beep
detector reported the end of a 500 ms 1 kHz beep after the greeting, with its error.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/amd.py [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import time
import wave
from collections.abc import Callable

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # FACTS: BLAS threads fight over cores

import numpy as np

from ivrbot.media.amd import AmdResult, AmdSettings, AnsweringMachineDetector, BeepDetector
from ivrbot.media.frames import resample

RATE = 16000
GREETING = (
    "Hi, you have reached the Smith family. We can't come to the phone right now. "
    "Please leave a message after the tone."
)
GREETING_KO = (
    "안녕하세요, 김민수입니다. 지금은 전화를 받을 수 없습니다. 삐 소리가 나면 메시지를 남겨 주세요."
)
HUMANS = [
    ("en", "Hello?"),
    ("en-us", "Hello?"),
    ("ko", "여보세요?"),
    ("en-us", "Hello, this is Kim."),
]
MACHINES = [("en", GREETING), ("en-us", GREETING), ("ko", GREETING_KO)]
SETTINGS = [("asterisk", AmdSettings()), ("3 words", AmdSettings(maximum_number_of_words=3))]


def say(text: str, voice: str) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    pcm = resample(pcm, rate, RATE).astype(np.float64)
    return (pcm * (32768 * 10 ** (-20 / 20)) / np.sqrt(np.mean(pcm**2))).astype(np.int16)


def silence(ms: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(round(rate * ms / 1000), dtype=np.int16)


def tone(freq: float, ms: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(rate * ms / 1000)) / rate
    return (32767 * 10 ** (-15 / 20) * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def clicks(rate: int) -> np.ndarray:
    """5 s of 40 ms noise bursts every 400 ms: never a word, never a silence that decides."""
    rng = np.random.default_rng(0)
    burst = lambda: rng.normal(0, 3000, rate * 40 // 1000)  # noqa: E731
    parts = [np.concatenate([burst(), np.zeros(rate * 360 // 1000)]) for _ in range(13)]
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


def cpu_ms_per_second(feed: Callable[[np.ndarray], object], pcm: np.ndarray, rate: int) -> float:
    """CPU of feeding ``pcm`` in 20 ms chunks to a fresh detector's ``feed``."""
    chunk = rate // 50
    start = time.process_time()
    for i in range(0, pcm.size, chunk):
        feed(pcm[i : i + chunk])
    return (time.process_time() - start) * 1000.0 / (pcm.size / rate)


def first_loud(pcm: np.ndarray) -> int:
    return int(np.nonzero(np.abs(pcm) > 300)[0][0])


def last_loud(pcm: np.ndarray) -> int:
    return int(np.nonzero(np.abs(pcm) > 300)[0][-1])


def decide(pcm: np.ndarray, settings: AmdSettings) -> AmdResult:
    amd = AnsweringMachineDetector(RATE, settings)
    for i in range(0, pcm.size, RATE // 50):
        result = amd.feed(pcm[i : i + RATE // 50])
        if result is not None:
            return result
    return amd.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: run 'apt-get install espeak-ng'")

    speech = np.concatenate([say(text, voice) for voice, text in MACHINES])
    with_beeps = np.concatenate([speech, silence(300), tone(1000, 500), silence(500)] * 2)

    print(f"CPU, ms per audio second, 20 ms chunks (median of {args.runs} runs)")
    print(f"{'rate':>6} | {'AMD deciding':>12} | {'beep detector':>13}")
    print(f"{'-' * 6}-+-{'-' * 12}-+-{'-' * 13}")
    for rate in (8000, 16000, 48000):
        undecided = clicks(rate)
        audio = resample(with_beeps, RATE, rate)
        amd_cost = statistics.median(
            cpu_ms_per_second(AnsweringMachineDetector(rate).feed, undecided, rate)
            for _ in range(args.runs)
        )
        beep_cost = statistics.median(
            cpu_ms_per_second(BeepDetector(rate).feed, audio, rate) for _ in range(args.runs)
        )
        print(f"{rate:>6} | {amd_cost:>12.2f} | {beep_cost:>13.2f}")

    print()
    print("AMD decisions at 16 kHz (espeak-ng at -20 dBFS RMS after 300 ms of silence)")
    header = f"{'sample':<28} | {'settings':<9} | {'verdict/cause':<20} | {'words':>5} | latency"
    print(header)
    print("-" * (len(header) + 30))
    for voice, text in HUMANS:
        pcm = np.concatenate([silence(300), say(text, voice), silence(3000)])
        for name, settings in SETTINGS:
            r = decide(pcm, settings)
            after = r.decided_at_ms - last_loud(pcm) * 1000 // RATE
            print(
                f"{voice + ': ' + text:<28} | {name:<9} | {r.verdict + '/' + r.cause:<20} |"
                f" {r.words:>5} | {r.decided_at_ms} ms, {after:+} ms from the speech end"
            )
    beep_rows = []
    for voice, text in MACHINES:
        greeting = say(text, voice)
        lead = silence(300)
        pcm = np.concatenate([lead, greeting, silence(400), tone(1000, 500), silence(1000)])
        label = f"{voice}: machine ({greeting.size / RATE:.1f} s)"
        for name, settings in SETTINGS:
            r = decide(pcm, settings)
            after = r.decided_at_ms - first_loud(pcm) * 1000 // RATE
            print(
                f"{label:<28} | {name:<9} | {r.verdict + '/' + r.cause:<20} |"
                f" {r.words:>5} | {r.decided_at_ms} ms, {after:+} ms from the speech start"
            )
        truth = (lead.size + greeting.size) * 1000 / RATE + 900
        detector = BeepDetector(RATE)
        for i in range(0, pcm.size, RATE // 50):
            end = detector.feed(pcm[i : i + RATE // 50])
            if end is not None:
                reported = (i + RATE // 50) * 1000 / RATE
                beep_rows.append((label, truth, end, reported))
                break

    print()
    print("Beep after the greeting (1 kHz, 500 ms, -15 dBFS, 20 ms chunks)")
    header = f"{'sample':<28} | {'true end':>9} | {'found end':>9} | {'error':>7} | reported"
    print(header)
    print("-" * (len(header) + 14))
    for label, truth, end, reported in beep_rows:
        print(
            f"{label:<28} | {truth:>6.1f} ms | {end:>6.1f} ms | {end - truth:>+4.1f} ms |"
            f" {reported - truth:+.0f} ms after the end"
        )


if __name__ == "__main__":
    main()
