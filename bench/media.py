"""Media benchmark: ASR real-time factor, TTS latency, recogniser memory. Under a minute.

Run: .venv/bin/python bench/media.py
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av
import numpy as np
import vosk

from ivrbot.media.asr import GrammarTurn, load_model
from ivrbot.media.tts import Synthesizer

RATE = 16000
CHUNK = RATE // 50
CHOICES = ["메뉴", "예약", "아니요", "아니오"]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=dst_rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = src_rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16)


async def bench_tts(rows: list[tuple[str, str, str]]) -> dict[str, list[np.ndarray]]:
    cache = Path(tempfile.mkdtemp(prefix="ivrbot-bench-"))
    texts = [f"Thank you for calling. Your reference number is {i}." for i in range(30)]
    async with Synthesizer(cache) as synth:
        t0 = time.perf_counter()
        await synth.synth("warm up")
        start_s = time.perf_counter() - t0
        misses = []
        for text in texts:
            t0 = time.perf_counter()
            await synth.synth(text)
            misses.append(time.perf_counter() - t0)
        memory_hits = []
        for text in texts:
            t0 = time.perf_counter()
            await synth.synth(text)
            memory_hits.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        burst = await asyncio.gather(*(synth.synth(f"Concurrent prompt {i}.") for i in range(40)))
        burst_s = time.perf_counter() - t0
        assert all(p.pcm.size for p in burst)
        ko = {w: (await synth.synth(w, voice="ko")) for w in ("메뉴", "예약", "아니요")}
    async with Synthesizer(cache) as fresh:
        disk_hits = []
        for text in texts:
            t0 = time.perf_counter()
            await fresh.synth(text)
            disk_hits.append(time.perf_counter() - t0)
        assert fresh.stats.synth_count == 0
    ms = 1000.0
    rows.append(("TTS worker start + first prompt", f"{start_s * ms:.0f} ms", "once per process"))
    rows.append(("TTS cache miss, median", f"{statistics.median(misses) * ms:.1f} ms", "n=30"))
    rows.append(
        ("TTS cache hit (memory), median", f"{statistics.median(memory_hits) * ms:.3f} ms", "n=30")
    )
    rows.append(
        (
            "TTS cache hit (disk, new Synthesizer), median",
            f"{statistics.median(disk_hits) * ms:.2f} ms",
            "n=30",
        )
    )
    rows.append(
        (
            "TTS 40 concurrent misses",
            f"{burst_s * ms:.0f} ms total",
            f"{burst_s / 40 * ms:.1f} ms each",
        )
    )
    return {"ko": [resample(p.pcm, p.sample_rate) for p in ko.values()]}


async def bench_asr(rows: list[tuple[str, str, str]], words: list[np.ndarray]) -> None:
    t0 = time.perf_counter()
    model = await load_model()
    rows.append(("ASR model load", f"{time.perf_counter() - t0:.2f} s", "once per process"))

    # 1. vosk alone, grammar recogniser, whole utterances (no VAD gating).
    utterances = [
        np.concatenate([np.zeros(8000, np.int16), w, np.zeros(8000, np.int16)]) for w in words
    ]
    audio_s = cpu_s = 0.0
    for _ in range(10):
        for u in utterances:
            grammar = json.dumps([*CHOICES, "<UNK>"], ensure_ascii=False)  # vosk needs raw UTF-8
            rec = vosk.KaldiRecognizer(model, float(RATE), grammar)
            c0 = time.process_time()
            for i in range(0, len(u), CHUNK * 5):
                rec.AcceptWaveform(u[i : i + CHUNK * 5].tobytes())
            rec.FinalResult()
            cpu_s += time.process_time() - c0
            audio_s += len(u) / RATE
    rows.append(
        ("ASR RTF, vosk grammar recogniser", f"{cpu_s / audio_s:.3f}", f"{audio_s:.0f} s audio")
    )

    # 2. GrammarTurn end to end: 20 ms chunks, own VAD, 3 s of waiting before each answer.
    audio_s = cpu_s = 0.0
    correct = total = 0
    latencies = []
    for _ in range(5):
        for expected, w in zip(["메뉴", "예약", "아니요"], words, strict=True):
            turn_audio = np.concatenate([np.zeros(3 * RATE, np.int16), w, np.zeros(RATE, np.int16)])
            turn = GrammarTurn(model, CHOICES)
            c0 = time.process_time()
            result = None
            fed = 0
            for i in range(0, len(turn_audio), CHUNK):
                fed = i + CHUNK
                result = await turn.feed(turn_audio[i : i + CHUNK])
                if result is not None:
                    break
            cpu_s += time.process_time() - c0
            audio_s += fed / RATE
            total += 1
            correct += result is not None and result.choice == expected
            speech_end = 3 * RATE + int(np.nonzero(np.abs(w) > 300)[0][-1])
            latencies.append((fed - speech_end) / RATE)
    rows.append(
        (
            "ASR RTF, GrammarTurn (VAD + vosk + loop)",
            f"{cpu_s / audio_s:.3f}",
            f"{audio_s:.0f} s audio",
        )
    )
    rows.append(
        (
            "ASR end of speech -> result (audio time)",
            f"{statistics.median(latencies) * 1000:.0f} ms",
            "silence_ms=300",
        )
    )
    rows.append(("ASR accuracy, espeak-ng ko", f"{correct}/{total}", "메뉴 예약 아니요"))

    # 3. Memory per grammar turn (recogniser included), created and after 1 s of speech.
    gc.collect()
    n = 200
    before = rss_bytes()
    turns = [GrammarTurn(model, CHOICES, no_input_ms=60_000) for _ in range(n)]
    created = rss_bytes()
    rows.append(
        ("Memory per grammar turn, created", f"{(created - before) / n / 1024:.0f} KiB", f"n={n}")
    )
    speech = np.concatenate([np.zeros(RATE // 2, np.int16), words[0][: RATE // 2]])
    fed_turns = turns[:50]
    for turn in fed_turns:
        for i in range(0, len(speech), CHUNK):
            await turn.feed(speech[i : i + CHUNK])
    fed = rss_bytes()
    rows.append(
        (
            "Memory per grammar turn, mid-speech",
            f"{(fed - created) / len(fed_turns) / 1024 + (created - before) / n / 1024:.0f} KiB",
            f"n={len(fed_turns)}",
        )
    )
    del turns, fed_turns


async def main() -> None:
    t0 = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    audio = await bench_tts(rows)
    await bench_asr(rows, audio["ko"])
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>18}  note")
    print(f"{'-' * width}  {'-' * 18}  {'-' * 20}")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>18}  {note}")
    took = time.perf_counter() - t0
    print(f"(bench took {took:.1f} s on {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    asyncio.run(main())
