"""Prompts from the real engine (pyttsx3 + espeak-ng) through ivrbot.speech.tts."""

from __future__ import annotations

import asyncio
import ctypes.util
import itertools
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ivrbot.speech import tts
from ivrbot.speech.tts import Prompt, Synthesizer, TtsUnavailable, check_tts

pytestmark = pytest.mark.e2e


@pytest.fixture
async def synth(tmp_path: Path) -> AsyncIterator[Synthesizer]:
    s = Synthesizer(tmp_path / "prompts")
    yield s
    await s.close()


def rms_dbfs(pcm: np.ndarray) -> float:
    power = float(np.mean(np.square(pcm, dtype=np.float64)))
    return 10 * np.log10(power + 1e-9) - 20 * np.log10(32768)


def words(n: int) -> str:
    return " ".join(["banana"] * n)


async def test_synth_returns_audible_audio_that_grows_with_text(synth: Synthesizer) -> None:
    short = await synth.synth("Hello.")
    long = await synth.synth("Hello. Thank you for calling. Please say the name of the service.")
    for prompt in (short, long):
        assert isinstance(prompt, Prompt)
        assert prompt.pcm.dtype == np.int16 and prompt.pcm.ndim == 1
        assert prompt.sample_rate == 22050
        assert rms_dbfs(prompt.pcm) > -35, "audio is (nearly) silent"
        assert int(np.abs(prompt.pcm).max()) > 3000
        assert prompt.path.is_file() and prompt.path.parent == synth.cache_dir
    assert 0.2 < short.duration_s < 1.5
    assert long.duration_s > 3 * short.duration_s
    # The cached file holds the same audio as the prompt.
    with wave.open(str(long.path)) as f:
        assert f.getnchannels() == 1 and f.getsampwidth() == 2 and f.getframerate() == 22050
        assert np.array_equal(np.frombuffer(f.readframes(f.getnframes()), np.int16), long.pcm)


async def test_twenty_concurrent_requests_each_get_their_own_audio(tmp_path: Path) -> None:
    texts = [words(i + 1) for i in range(20)]  # each ~0.25 s longer than the one before
    async with Synthesizer(tmp_path / "sequential") as seq:
        expected = [(await seq.synth(t)).duration_s for t in texts]
    async with Synthesizer(tmp_path / "concurrent") as conc:
        prompts = await asyncio.gather(*(conc.synth(t) for t in reversed(texts)))
        prompts.reverse()
        assert conc.stats.synth_count == 20
        assert conc.stats.worker_starts == 1
    step = min(b - a for a, b in itertools.pairwise(expected))
    assert step > 0.15, "texts must differ enough in length to tell mix-ups apart"
    for text, prompt, want in zip(texts, prompts, expected, strict=True):
        assert prompt.text == text
        assert prompt.pcm.size > 0 and rms_dbfs(prompt.pcm) > -35
        assert abs(prompt.duration_s - want) < min(0.05, step / 3), (text, prompt.duration_s, want)
    assert len({p.path for p in prompts}) == 20


async def test_repeat_is_served_from_cache_even_in_a_new_synthesizer(tmp_path: Path) -> None:
    cache = tmp_path / "prompts"
    async with Synthesizer(cache) as first:
        a = await first.synth("Your booking is confirmed.", voice="en-us", rate=180)
        assert first.stats.synth_count == 1
        b = await first.synth("Your booking is confirmed.", voice="en-us", rate=180)
        assert b is a
        assert first.stats.synth_count == 1 and first.stats.cache_hits == 1
        # Another voice or rate is another prompt.
        c = await first.synth("Your booking is confirmed.", voice="en-us", rate=250)
        assert first.stats.synth_count == 2 and c.path != a.path
        assert c.duration_s < a.duration_s
    async with Synthesizer(cache) as second:
        d = await second.synth("Your booking is confirmed.", voice="en-us", rate=180)
        assert second.stats.synth_count == 0 and second.stats.disk_hits == 1
        assert second.stats.worker_starts == 0, "a cache hit must not start the engine"
        assert d.path == a.path and np.array_equal(d.pcm, a.pcm)
    assert not list(cache.glob("*.tmp.wav")), "temporary files left behind"


async def test_rate_and_voice_apply_to_every_request(synth: Synthesizer) -> None:
    # pyttsx3's driver cancels a rate change espeak is still processing when the next
    # runAndWait starts; alternating rates and voices shows every request got its own.
    for i in range(12):
        text = f"Your booking number {i} is confirmed."
        slow = await synth.synth(text, voice="en-us", rate=160)
        fast = await synth.synth(text, voice="en-us", rate=280)
        other = await synth.synth(text, voice="en", rate=160)
        assert fast.duration_s < 0.75 * slow.duration_s, (i, slow.duration_s, fast.duration_s)
        assert not np.array_equal(other.pcm[: slow.pcm.size], slow.pcm[: other.pcm.size])
    assert synth.stats.synth_count == 36


async def test_concurrent_requests_for_one_prompt_synthesise_once(synth: Synthesizer) -> None:
    loser = asyncio.ensure_future(synth.synth("Please hold."))
    others = [asyncio.ensure_future(synth.synth("Please hold.")) for _ in range(4)]
    await asyncio.sleep(0)
    loser.cancel()  # one caller giving up does not cancel the others' synthesis
    prompts = await asyncio.gather(*others)
    assert all(p is prompts[0] for p in prompts)
    assert synth.stats.synth_count == 1
    with pytest.raises(asyncio.CancelledError):
        await loser


async def test_stdout_stays_clean(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    async with Synthesizer(tmp_path / "prompts") as s:  # the worker starts inside the capture
        for i in range(5):
            await s.synth(f"Prompt number {i}.")
        await s.synth("메뉴", voice="ko")
        assert s.stats.synth_count == 6
    out, _ = capfd.readouterr()
    assert out == "", f"something reached stdout: {out[:200]!r}"


async def test_event_loop_never_stalls(tmp_path: Path) -> None:
    lateness: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        period = 0.005
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(period)
            lateness.append(time.perf_counter() - before - period)

    tick = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.05)
    async with Synthesizer(tmp_path / "prompts") as s:  # includes starting the worker
        for i in range(10):
            await s.synth(f"This is prompt {i}, spoken slowly and clearly.", rate=160)
        assert s.stats.synth_count == 10
    stop.set()
    await tick
    assert len(lateness) > 20
    assert max(lateness) < 0.020, f"loop stalled {max(lateness) * 1000:.1f} ms"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng command")
async def test_voice_ko_speaks_korean(synth: Synthesizer, tmp_path: Path) -> None:
    text = "메뉴 예약 아니요"
    prompt = await synth.synth(text, voice="ko", rate=200)
    assert rms_dbfs(prompt.pcm) > -35 and prompt.duration_s > 0.5

    def reference(voice: str) -> np.ndarray:
        out = tmp_path / f"ref-{voice}.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", "200", "-w", str(out), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(out)) as f:
            return np.frombuffer(f.readframes(f.getnframes()), np.int16)

    def similarity(a: np.ndarray, b: np.ndarray) -> float:
        n = min(len(a), len(b))
        return float(np.corrcoef(a[:n].astype(np.float64), b[:n].astype(np.float64))[0, 1])

    # The same text spoken by espeak-ng's Korean voice, not by its English one.
    assert similarity(prompt.pcm, reference("ko")) > 0.9
    assert similarity(prompt.pcm, reference("en")) < 0.5
    english = await synth.synth(text, voice="en", rate=200)
    assert similarity(prompt.pcm, english.pcm) < 0.5


async def test_bad_requests_are_refused(synth: Synthesizer) -> None:
    with pytest.raises(ValueError, match="empty"):
        await synth.synth("   ")
    with pytest.raises(ValueError, match="unknown espeak voice"):
        await synth.synth("Hello.", voice="no-such-voice")
    with pytest.raises(ValueError, match="rate"):
        await synth.synth("Hello.", rate=0)
    # The worker survives a bad voice and the next prompt uses the voice asked for.
    after = await synth.synth("Hello.", voice="en")
    assert after.pcm.size > 0 and synth.stats.worker_starts == 1


async def test_missing_espeak_raises_one_line_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Make the library lookup fail the way it does on a machine without libespeak-ng.
    monkeypatch.setattr(tts, "_ESPEAK_LIBRARY_NAMES", ("libespeak-ng-not-here.so.1",))
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(TtsUnavailable) as info:
        check_tts()
    message = str(info.value)
    assert "\n" not in message
    assert "espeak-ng is not installed" in message and "apt-get install espeak-ng" in message
    s = Synthesizer(tmp_path / "prompts")
    with pytest.raises(TtsUnavailable, match="apt-get install espeak-ng"):
        await s.synth("Hello.")  # engine id may be known already: fails on starting the worker
    monkeypatch.setattr(tts, "_engine_id_value", None)  # as in a fresh process
    with pytest.raises(TtsUnavailable, match="apt-get install espeak-ng"):
        await s.synth("Hello.")  # fails on computing the cache key
    assert s.stats.worker_starts == 0
    await s.close()
