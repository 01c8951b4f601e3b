"""Media benchmark: ASR real-time factor (grammar and free-form), free-form warm-up and first
result latency, TTS latency, recogniser memory. Under a minute.

Run: .venv/bin/python bench/media.py
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import av
import numpy as np
import vosk

from ivrbot.speech.recognizer_pool import RecognizerPool
from ivrbot.speech.speech_model import load_model
from ivrbot.speech.tts import Synthesizer
from ivrbot.speech.turns import FreeFormTurn, GrammarTurn

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
        sentence = await synth.synth("메뉴 예약 아니요 메뉴 예약", voice="ko", rate=150)
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
    return {
        "ko": [resample(p.pcm, p.sample_rate) for p in ko.values()],
        "sentence": [resample(sentence.pcm, sentence.sample_rate)],
    }


async def bench_asr(
    rows: list[tuple[str, str, str]], words: list[np.ndarray], sentence: np.ndarray
) -> None:
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
    await bench_free_form(rows, model, words[0], sentence)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
            "fordblks", "keepcost",
        )
    ]  # fmt: skip


def heap_bytes() -> int:
    """Bytes malloc has handed out and not got back (all arenas; glibc's mallinfo2). Unlike
    RSS it is not hidden by freed memory that malloc keeps for reuse. Falls back on RSS."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (AttributeError, OSError):
        return rss_bytes()
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


async def feed_in_real_time(
    turn: FreeFormTurn, utterance: np.ndarray
) -> tuple[float, float, float]:
    """Feed 20 ms chunks at the pace of a call: (speech start -> first partial, endpoint ->
    result, CPU seconds), wall times in seconds (first partial -1 when there was none)."""
    first_partial: list[float] = []

    def on_partial(text: str) -> None:
        if text and not first_partial:
            first_partial.append(time.monotonic())

    turn.on_partial = on_partial
    c0 = time.process_time()
    start = time.monotonic()
    for i in range(0, len(utterance), CHUNK):
        await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
        fed_at = time.monotonic()
        if await turn.feed(utterance[i : i + CHUNK]) is not None:
            break
    done = time.monotonic()
    assert turn.result is not None and turn.speech_started_at is not None
    partial_s = first_partial[0] - turn.speech_started_at if first_partial else -1.0
    return partial_s, done - fed_at, time.process_time() - c0


async def bench_free_form(
    rows: list[tuple[str, str, str]], model: vosk.Model, word: np.ndarray, sentence: np.ndarray
) -> None:
    mib = 1024 * 1024
    ms = 1000.0

    # 1. vosk alone: make, warm up (0.6 s of silence + Reset) and decode a ~8 s utterance on
    # two threads; heap per recogniser after each stage; real-time factor of the decoding.
    n = 4
    gap = np.zeros(RATE // 5, np.int16)
    long_utterance = np.concatenate([sentence, gap, sentence, gap, sentence])
    silence = np.zeros(int(0.6 * RATE), np.int16).tobytes()
    gc.collect()
    before = heap_bytes()
    made_s = []
    recs = []
    for _ in range(n):
        t0 = time.perf_counter()
        recs.append(vosk.KaldiRecognizer(model, float(RATE)))
        made_s.append(time.perf_counter() - t0)
    created = heap_bytes()

    def warm(rec: vosk.KaldiRecognizer) -> float:
        t0 = time.perf_counter()
        rec.AcceptWaveform(silence)
        rec.Reset()
        return time.perf_counter() - t0

    def decode(rec: vosk.KaldiRecognizer) -> None:
        for i in range(0, len(long_utterance), CHUNK * 5):
            rec.AcceptWaveform(long_utterance[i : i + CHUNK * 5].tobytes())
        rec.FinalResult()
        rec.Reset()

    with ThreadPoolExecutor(2) as threads:
        warm_s = list(threads.map(warm, recs))
        warmed = heap_bytes()
        c0 = time.process_time()
        list(threads.map(decode, recs))
        cpu_s = time.process_time() - c0
    used = heap_bytes()
    audio_s = n * len(long_utterance) / RATE
    del recs
    gc.collect()
    freed = heap_bytes()
    rows.append(
        ("ASR RTF, vosk free-form (warm)", f"{cpu_s / audio_s:.3f}", f"{audio_s:.0f} s audio")
    )
    rows.append(
        (
            "Free-form recogniser: create",
            f"{statistics.median(made_s) * ms:.0f} ms",
            f"median, n={n}",
        )
    )
    rows.append(
        (
            "Free-form recogniser: warm-up (0.6 s + Reset)",
            f"{statistics.median(warm_s) * ms:.0f} ms",
            f"median, n={n}, 2 threads",
        )
    )
    for label, value in (("created", created), ("warm", warmed)):
        rows.append(
            (
                f"Memory per free-form recogniser, {label}",
                f"{(value - before) / n / mib:.1f} MiB",
                "heap",
            )
        )
    rows.append(
        (
            "Memory per free-form recogniser, after speech",
            f"{(used - before) / n / mib:.1f} MiB",
            f"heap, {len(long_utterance) / RATE:.1f} s decoded, kept after Reset()",
        )
    )
    rows.append(("Memory left after freeing them", f"{(freed - before) / mib:.1f} MiB", "heap"))

    # 2. FreeFormTurn fed in real time: warm (a pool of 1, the recogniser reused) vs cold (an
    # empty pool: every turn makes its own), for one word and for a ~2.5 s sentence.
    pause = np.zeros(RATE // 2, np.int16)
    cases = {
        "word": np.concatenate([pause, word, pause, pause]),
        "sentence": np.concatenate([pause, sentence, pause, pause]),
    }
    cpu_s = audio_s = 0.0
    with RecognizerPool(model, RATE, 1) as warm_pool, RecognizerPool(model, RATE, 0) as cold_pool:
        await warm_pool.ready()
        for name, utterance in cases.items():
            for is_warm, pool in ((True, warm_pool), (False, cold_pool)):
                partials, finals = [], []
                for _ in range(2):
                    await warm_pool.ready()
                    turn = FreeFormTurn(model, pool=pool)
                    partial_s, final_s, cpu = await feed_in_real_time(turn, utterance)
                    assert turn.warm_start is is_warm
                    partials.append(partial_s)
                    finals.append(final_s)
                    if is_warm:
                        cpu_s += cpu
                        audio_s += turn._frames / 100
                label = f"Free-form {name}, {'warm' if is_warm else 'cold'}"
                rows.append(
                    (
                        f"{label}: endpoint -> result",
                        f"{statistics.median(finals) * ms:.0f} ms",
                        "wall, after silence_ms=300, n=2",
                    )
                )
                if name == "sentence":
                    rows.append(
                        (
                            f"{label}: speech start -> 1st partial",
                            f"{statistics.median(partials) * ms:.0f} ms",
                            "wall, n=2",
                        )
                    )
        pool_made = warm_pool.stats.create_s + cold_pool.stats.create_s
        pool_warm = warm_pool.stats.warm_s
    rows.append(
        (
            "ASR RTF, FreeFormTurn (VAD + vosk + loop)",
            f"{cpu_s / audio_s:.3f}",
            "warm, real-time feed",
        )
    )
    rows.append(
        (
            "RecognizerPool: create / warm-up",
            f"{statistics.median(pool_made) * ms:.0f} / {statistics.median(pool_warm) * ms:.0f} ms",
            "thread at nice +5",
        )
    )


def bench_dtmf_detector(rows: list[tuple[str, str, str]], speech: np.ndarray) -> None:
    """In-band detector CPU per second of audio, in 20 ms chunks as a call feeds it."""
    from ivrbot.media.dtmf import DtmfDetector, tones

    audio = np.concatenate([speech, tones("0123456789*#", RATE)] * 3)
    results = []
    for _ in range(7):
        detector = DtmfDetector(RATE)
        chunk = RATE // 50
        t0 = time.process_time()
        for i in range(0, audio.size, chunk):
            detector.feed(audio[i : i + chunk])
        results.append((time.process_time() - t0) / (audio.size / RATE) * 1000)
    rows.append(
        ("DTMF detector CPU per audio second", f"{statistics.median(results):.2f} ms",
         "16 kHz, 20 ms chunks, median of 7")
    )  # fmt: skip


async def main() -> None:
    t0 = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    audio = await bench_tts(rows)
    await bench_asr(rows, audio["ko"], audio["sentence"][0])
    bench_dtmf_detector(rows, audio["sentence"][0])
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>18}  note")
    print(f"{'-' * width}  {'-' * 18}  {'-' * 20}")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>18}  {note}")
    took = time.perf_counter() - t0
    print(f"(bench took {took:.1f} s on {os.cpu_count()} cores, Python {sys.version.split()[0]})")


if __name__ == "__main__":
    asyncio.run(main())
