"""The endpointing decision of a speech turn (complete / incomplete timeouts), as pure logic:
synthetic PCM (bursts of noise for words, digital silence between them) and a fake
recogniser that 'hears' one word per burst of loud audio in what it was fed since its last
final result. No speech model: the real one is in test_asr.py."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from ivrbot.speech.asr import Recognition, SpeechTurn
from ivrbot.speech.turns import is_complete

pytestmark = pytest.mark.unit

RATE = 16000
CHUNK = RATE // 50  # 20 ms, as the listener feeds a turn
LOUD = 8000  # amplitude of a 'word' (about -15 dBFS of noise)


class FakeModel:
    """Enough of vosk.Model for a SpeechTurn: the unknown-word token lookup."""

    def vosk_model_find_word(self, word: str) -> int:
        return 0 if word == "<UNK>" else -1


class FakeRecognizer:
    """Hears the n-th burst of loud audio (30 ms or more) since its last final as
    ``words[n]``; counts what it was fed and how many finals it gave."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.audio: list[np.ndarray] = []  # since the last final
        self.fed_samples = 0
        self.finals: list[str] = []

    def AcceptWaveform(self, data: bytes) -> bool:  # vosk names it so
        pcm = np.frombuffer(data, dtype="<i2")
        self.audio.append(pcm)
        self.fed_samples += pcm.size
        return False

    def PartialResult(self) -> str:
        return json.dumps({"partial": ""})  # like the real one: it trails the audio

    def FinalResult(self) -> str:
        pcm = np.concatenate(self.audio) if self.audio else np.zeros(0, np.int16)
        self.audio = []
        frames = pcm[: pcm.size - pcm.size % 160].reshape(-1, 160)
        loud = (np.abs(frames.astype(np.int32)).mean(axis=1) > 1000) if frames.size else []
        bursts, run = 0, 0
        for flag in [*loud, False]:
            if flag:
                run += 1
                continue
            bursts += run >= 3
            run = 0
        heard = [self.words[min(i, len(self.words) - 1)] for i in range(bursts)]
        text = " ".join(heard)
        self.finals.append(text)
        result = [{"word": w, "conf": 1.0} for w in heard]
        return json.dumps({"text": text, "result": result})


class FakeGrammarTurn(SpeechTurn):
    """A grammar turn over FakeRecognizer: complete = exactly one whole phrase."""

    def __init__(
        self, words: list[str], phrases: Mapping[str, str] | list[str], **kwargs: Any
    ) -> None:
        # noise bursts stand for words here: no speechness check (see test_nonspeech.py)
        kwargs.setdefault("reject_nonspeech", False)
        super().__init__(FakeModel(), **kwargs)  # type: ignore[arg-type]
        self.phrases = list(phrases)
        self.fake = FakeRecognizer(words)

    def _open(self) -> Any:
        return self.fake

    def _complete(self) -> bool:
        _, text = self._words()
        return is_complete(text, self.phrases)

    def _recognition(self) -> Recognition:
        _, text = self._words()
        if text in self.phrases:
            return Recognition("match", text, text, 1.0)
        return Recognition("nomatch", text, None, 0.0)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, np.int16)


def word(ms: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-LOUD, LOUD, RATE * ms // 1000).astype(np.int16)


async def run(turn: SpeechTurn, *parts: np.ndarray) -> tuple[Recognition | None, int]:
    """Feed ``parts`` in 20 ms chunks; the recognition and the samples fed when it came."""
    audio = np.concatenate(parts)
    for start in range(0, audio.size, CHUNK):
        result = await turn.feed(audio[start : start + CHUNK])
        if result is not None:
            return result, start + CHUNK
    return None, audio.size


def ms(samples: int) -> float:
    return samples * 1000 / RATE


# -- is_complete ----------------------------------------------------------------------------------


def test_complete_means_one_whole_phrase_that_nothing_goes_on_from() -> None:
    phrases = ["예약", "메뉴", "one", "one two", "check  balance"]
    assert is_complete("예약", phrases)
    assert is_complete(" 메뉴 ", phrases)
    assert is_complete("one two", phrases)
    assert not is_complete("one", phrases)  # 'one two' may be on its way
    assert not is_complete("", phrases)
    assert not is_complete("예약 메뉴", phrases)
    assert not is_complete("<UNK>", phrases)
    assert not is_complete("check", phrases)
    assert not is_complete("check balance", phrases)  # phrases are compared as given


# -- the turn -----------------------------------------------------------------------------------


async def test_a_complete_answer_ends_after_the_complete_timeout() -> None:
    turn = FakeGrammarTurn(["예약"], ["예약", "메뉴"], complete_silence_ms=150)
    result, fed = await run(turn, silence(300), word(400), silence(1000))
    assert result is not None and result.outcome == "match" and result.choice == "예약"
    assert turn.ended_by == "complete"
    assert 150 <= ms(fed) - 700 <= 170, ms(fed) - 700
    assert turn.fake.finals == ["예약"]


async def test_without_a_complete_timeout_the_turn_waits_for_silence_ms() -> None:
    turn = FakeGrammarTurn(["예약"], ["예약", "메뉴"])
    result, fed = await run(turn, silence(300), word(400), silence(1000))
    assert result is not None and result.choice == "예약"
    assert turn.ended_by == "silence"
    assert 300 <= ms(fed) - 700 <= 320


async def test_a_complete_timeout_not_shorter_than_silence_ms_changes_nothing() -> None:
    turn = FakeGrammarTurn(["예약"], ["예약"], silence_ms=300, complete_silence_ms=400)
    result, fed = await run(turn, silence(300), word(400), silence(1000))
    assert result is not None and result.choice == "예약"
    assert turn.ended_by == "silence" and 300 <= ms(fed) - 700 <= 320
    assert turn.fake.finals == ["예약"]


async def test_no_whole_choice_waits_for_the_incomplete_timeout_with_one_final() -> None:
    turn = FakeGrammarTurn(["<UNK>"], ["예약", "메뉴"], complete_silence_ms=150)
    result, fed = await run(turn, silence(300), word(400), silence(1000))
    assert result is not None and result.outcome == "nomatch" and result.text == "<UNK>"
    assert turn.ended_by == "silence"
    assert 300 <= ms(fed) - 700 <= 320
    # the early final is the answer: the silence after it never reached the recogniser
    assert turn.fake.finals == ["<UNK>"]
    assert ms(turn.fake.fed_samples) <= 300 + 400 + 160


async def test_a_phrase_that_another_phrase_goes_on_from_is_not_complete() -> None:
    turn = FakeGrammarTurn(["one", "two"], ["one", "one two"], complete_silence_ms=150)
    result, fed = await run(turn, silence(300), word(300), silence(1000))
    assert result is not None and result.choice == "one"
    assert turn.ended_by == "silence" and 300 <= ms(fed) - 600 <= 320


async def test_speech_after_an_early_final_is_decoded_with_what_came_before() -> None:
    """'one' (a prefix of 'one two'), a 200 ms pause, 'two': the early final after the pause
    heard 'one'; when the caller goes on, the whole turn is decoded again as one utterance,
    so the answer is 'one two' (not a second segment 'two' on its own)."""
    turn = FakeGrammarTurn(["one", "two"], ["one", "one two"], complete_silence_ms=150)
    audio = (silence(300), word(300, 1), silence(200), word(300, 2), silence(1000))
    result, fed = await run(turn, *audio)
    assert result is not None and result.outcome == "match" and result.choice == "one two"
    assert turn.ended_by == "complete"
    assert 150 <= ms(fed) - 1100 <= 170
    assert turn.fake.finals == ["one", "one two"]


async def test_a_click_after_an_early_final_does_not_start_decoding_again() -> None:
    turn = FakeGrammarTurn(["<UNK>"], ["예약"], complete_silence_ms=150)
    click = word(20, 3)  # two loud frames: not speech going on
    result, fed = await run(turn, silence(300), word(400), silence(200), click, silence(1000))
    assert result is not None and result.text == "<UNK>"
    assert turn.ended_by == "silence"
    assert 300 <= ms(fed) - 920 <= 320  # the click restarted the silence count, no more
    assert turn.fake.finals == ["<UNK>"]


async def test_early_finals_per_turn_are_bounded() -> None:
    """Speech, pause, speech... with no whole choice: three early finals (each followed by a
    new decode of the turn), then plain endpointing."""
    turn = FakeGrammarTurn(["<UNK>"], ["예약"], complete_silence_ms=150, max_speech_ms=60_000)
    parts = [silence(300)]
    for i in range(6):
        parts += [word(200, i), silence(200)]
    parts.append(silence(1000))
    result, _ = await run(turn, *parts)
    assert result is not None and turn.ended_by == "silence"
    assert len(turn.fake.finals) == 4  # 3 early, then the final of the whole turn
    assert turn.fake.finals[-1] == " ".join(["<UNK>"] * 6)


async def test_max_speech_and_noinput_are_unchanged() -> None:
    turn = FakeGrammarTurn(["예약"], ["예약"], complete_silence_ms=150, max_speech_ms=500)
    result, _ = await run(turn, silence(100), word(2000), silence(500))
    assert result is not None and turn.ended_by == "max-speech"
    quiet = FakeGrammarTurn(["예약"], ["예약"], complete_silence_ms=150, no_input_ms=400)
    result, fed = await run(quiet, silence(1000))
    assert result is not None and result.outcome == "noinput" and quiet.ended_by == "noinput"
    assert ms(fed) == 400


async def test_finish_after_an_early_final_keeps_its_answer() -> None:
    turn = FakeGrammarTurn(["<UNK>"], ["예약"], complete_silence_ms=150)
    result, _ = await run(turn, silence(300), word(400), silence(200))
    assert result is None
    finished = await turn.finish()
    assert finished.text == "<UNK>" and turn.ended_by == "finish"
    assert turn.fake.finals == ["<UNK>"]


def test_complete_silence_must_be_positive() -> None:
    with pytest.raises(ValueError, match="complete_silence_ms"):
        FakeGrammarTurn(["예약"], ["예약"], complete_silence_ms=0)
