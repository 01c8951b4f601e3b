"""The two kinds of listening turn over :class:`ivrbot.speech.asr.SpeechTurn`: a grammar turn
(one of a question's choices, and whether what was heard is already a whole one) and a
free-form turn (whatever is said)."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence

import vosk

from ivrbot.speech.asr import PartialCallback, Recognition, SpeechStartCallback, SpeechTurn
from ivrbot.speech.recognizer_pool import RecognizerPool, shared_pool

log = logging.getLogger(__name__)

# spellings of one word that name one choice
_SYNONYMS: tuple[frozenset[str], ...] = (frozenset({"아니요", "아니오"}),)
# A choice said more often than this in one answer is not an answer: a grammar recogniser
# fed other people's talk (babble) hears the grammar's words over and over.
# A choice heard more than once counts only in a short answer ('네 네'): seconds of speech.
MAX_REPEATS = 2
MAX_REPEATED_SPEECH_S = 1.5
# The mean confidence of the choice's words must be at least this. Measured (bench/
# false_accepts.py): the spoken choices came with 0.47 and up (아니요 often 0.5-0.6); 1 s
# bursts of babble heard as a choice mostly with 0.5-1.0, a few under 0.4. It separates
# little: a floor higher than this would lose real answers.
MIN_CONFIDENCE = 0.4


def _normalise(phrase: str) -> str:
    return " ".join(phrase.split())


def _choice_table(choices: Mapping[str, str] | Sequence[str]) -> dict[str, str]:
    if isinstance(choices, str | bytes):
        raise TypeError("choices must be a list of phrases or a mapping phrase -> choice name")
    table: dict[str, str] = {}
    if isinstance(choices, Mapping):
        for phrase, name in choices.items():
            key = _normalise(phrase)
            if key:
                table[key] = name
        return table
    phrases = [_normalise(p) for p in choices]
    for phrase in phrases:
        if phrase and phrase not in table:
            table[phrase] = phrase
    for group in _SYNONYMS:
        given = [p for p in phrases if p in group]
        for phrase in given:
            table[phrase] = given[0]
    return table


class GrammarTurn(SpeechTurn):
    """One question: recognise one of ``choices`` (phrases, or a mapping phrase -> choice
    name) from the caller's audio, with the endpointing of :class:`SpeechTurn`.

    With ``complete_silence_ms`` the turn ends after that much silence when vosk heard
    exactly one whole choice, and no other choice goes on from it ('one' when 'one two' is
    also a choice is not complete); anything else waits for ``silence_ms``.

    A grammar recogniser puts every sound on the grammar's words, so a match is accepted
    only when (measured on a corpus of music, tones, babble and noise: see
    ``bench/false_accepts.py``): the sound is speech (the turn's speechness check, see
    :class:`SpeechTurn`; music, tones and noise are no input), every choice heard names the
    same choice, said once (or up to ``MAX_REPEATS`` times within ``MAX_REPEATED_SPEECH_S``
    of speech), and its words' confidence is at least ``min_confidence``. Otherwise the
    answer is ``nomatch``.

    The grammar recogniser is made at once (under 1 ms, about 1.6 MB).
    """

    def __init__(
        self,
        model: vosk.Model,
        choices: Mapping[str, str] | Sequence[str],
        sample_rate: int = 16000,
        silence_ms: int = 300,
        no_input_ms: int = 5000,
        max_speech_ms: int = 10000,
        *,
        complete_silence_ms: int | None = None,
        on_partial: PartialCallback | None = None,
        on_speech_start: SpeechStartCallback | None = None,
        reject_nonspeech: bool = True,
        min_confidence: float = MIN_CONFIDENCE,
        max_repeats: int | None = MAX_REPEATS,
    ) -> None:
        super().__init__(
            model,
            sample_rate,
            silence_ms,
            no_input_ms,
            max_speech_ms,
            complete_silence_ms=complete_silence_ms,
            on_partial=on_partial,
            on_speech_start=on_speech_start,
            reject_nonspeech=reject_nonspeech,
        )
        self.min_confidence = min_confidence
        self.max_repeats = max_repeats  # None: any number of times, and other choices too
        table = _choice_table(choices)
        missing = sorted(
            {w for phrase in table for w in phrase.split() if model.vosk_model_find_word(w) < 0}
        )
        self.missing_words: tuple[str, ...] = tuple(missing)
        if missing:
            log.warning("words not in the speech model's vocabulary, ignored: %s", missing)
        self.choices: dict[str, str] = {
            phrase: name
            for phrase, name in table.items()
            if not any(w in missing for w in phrase.split())
        }
        if not self.choices:
            raise ValueError(f"no choice is in the speech model's vocabulary: {sorted(table)}")
        self.grammar: list[str] = [*self.choices, self.unknown]
        self._rec = vosk.KaldiRecognizer(
            model, float(sample_rate), json.dumps(self.grammar, ensure_ascii=False)
        )
        self._rec.SetWords(True)

    def _open(self) -> vosk.KaldiRecognizer:
        raise RuntimeError("a grammar turn's recogniser is made with the turn")

    def _complete(self) -> bool:
        _, text = self._words()
        return is_complete(text, self.choices)

    def _recognition(self) -> Recognition:
        words, text = self._words()
        found = _occurrences([w for w, _ in words], self.choices)
        if not found:
            return Recognition("nomatch", text, None, _mean([c for _, c in words]))
        start, length, phrase = found[0]  # the first choice heard (the longest there)
        confidence = _mean([c for _, c in words[start : start + length]])
        speech_s = self.speech_s() if len(found) > 1 else 0.0
        if not _one_choice(found, self.choices, self.max_repeats, speech_s):
            return Recognition("nomatch", text, None, confidence)
        if confidence < self.min_confidence:
            return Recognition("nomatch", text, None, confidence)
        return Recognition("match", text, self.choices[phrase], confidence)


class FreeFormTurn(SpeechTurn):
    """One open question: transcribe whatever the caller says (the model's whole vocabulary),
    with the endpointing of :class:`SpeechTurn`.

    ``result.text`` is the transcript and ``result.confidence`` its mean word confidence;
    the outcome is ``nomatch`` when vosk heard nothing but unknown or bracketed tokens
    (``<UNK>``, ``[10]``...), ``match`` otherwise (``choice`` is None).

    The recogniser comes from ``pool`` (default: :func:`shared_pool` for the model and
    rate) when speech starts: a warm one if the pool has one (``warm_start`` says which),
    else one made on the spot, whose first 0.6 s of audio costs about half a second more.
    After the turn it goes back to the pool. Free-form decoding costs about 0.2-0.4 s of
    CPU per second of speech. vosk's first partial comes 0.8-1.4 s into the speech (this
    model decodes in chunks): barge-in on ``on_partial`` (words heard, so a cough or a bang
    does not stop the prompt) costs that much; :meth:`speech_started` / ``on_speech_start``
    fire 30-40 ms into it.
    """

    def __init__(
        self,
        model: vosk.Model,
        sample_rate: int = 16000,
        silence_ms: int = 300,
        no_input_ms: int = 5000,
        max_speech_ms: int = 10000,
        *,
        pool: RecognizerPool | None = None,
        on_partial: PartialCallback | None = None,
        on_speech_start: SpeechStartCallback | None = None,
    ) -> None:
        super().__init__(
            model,
            sample_rate,
            silence_ms,
            no_input_ms,
            max_speech_ms,
            on_partial=on_partial,
            on_speech_start=on_speech_start,
        )
        if pool is None:
            pool = shared_pool(model, sample_rate)
        elif pool.model is not model or pool.sample_rate != sample_rate:
            raise ValueError("the pool's model and sample rate must be the turn's")
        self.pool = pool
        self.warm_start: bool | None = None  # None until the turn took a recogniser

    def _open(self) -> vosk.KaldiRecognizer:
        rec, warm = self.pool.take()
        self.warm_start = warm
        return rec

    def _release(self, rec: vosk.KaldiRecognizer) -> None:
        self.pool.give_back(rec, self._audio_s)

    def _recognition(self) -> Recognition:
        words, text = self._words()
        confidence = _mean([c for _, c in words])
        if all(_not_a_word(w, self.unknown) for w, _ in words):
            return Recognition("nomatch", text, None, confidence)
        return Recognition("match", text, None, confidence)


def is_complete(text: str, phrases: Collection[str]) -> bool:
    """Whether ``text`` is exactly one of ``phrases`` (normalised) and no other phrase goes
    on from it: the caller has said a whole answer and cannot be half-way through another."""
    said = _normalise(text)
    if said not in phrases:
        return False
    return not any(p.startswith(said + " ") for p in phrases)


def choice_heard(
    text: str, choices: Mapping[str, str] | Sequence[str], speech_s: float = 0.0
) -> str | None:
    """The name of the choice a grammar turn over ``choices`` (as a flow's Ask makes it)
    takes ``text`` for, its words heard with full confidence over ``speech_s`` seconds of
    speech; None: a no-match."""
    table = _choice_table(choices)
    found = _occurrences(text.split(), table)
    if not found or not _one_choice(found, table, MAX_REPEATS, speech_s):
        return None
    return table[found[0][2]]


def _one_choice(
    found: list[tuple[int, int, str]], choices: Mapping[str, str], max_repeats: int | None,
    speech_s: float,
) -> bool:  # fmt: skip
    """Whether the phrases ``found`` are one choice said once, or up to ``max_repeats``
    times within ``MAX_REPEATED_SPEECH_S`` of speech (``max_repeats`` None: anything)."""
    if max_repeats is None:
        return True
    names = {choices[p] for _, _, p in found}
    if len(names) > 1 or len(found) > max_repeats:
        return False
    return len(found) == 1 or speech_s <= MAX_REPEATED_SPEECH_S


def _occurrences(tokens: list[str], phrases: Collection[str]) -> list[tuple[int, int, str]]:
    """The phrases found in ``tokens``, left to right, without overlap, the longest where
    several start: (start, length in tokens, phrase)."""
    split = sorted((p.split() for p in phrases), key=len, reverse=True)
    found: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        for parts in split:
            if tokens[i : i + len(parts)] == parts:
                found.append((i, len(parts), " ".join(parts)))
                i += len(parts)
                break
        else:
            i += 1
    return found


def _not_a_word(token: str, unknown: str) -> bool:
    return token == unknown or not token or (token[0], token[-1]) in (("[", "]"), ("<", ">"))


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
