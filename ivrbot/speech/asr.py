"""Speech recognition with vosk: a listening turn's endpointing in front of a recogniser
(:class:`SpeechTurn`); its two kinds, grammar and free-form, are in :mod:`ivrbot.speech.turns`.

Traps from docs/facts.md handled here:

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
* vosk's partial result trails the audio by 0.2-0.4 s with this model (it decodes in chunks):
  when the caller stops, the partial does not hold the last word yet, so it cannot tell
  whether the answer is complete. A grammar turn with ``complete_silence_ms`` (VoiceXML's
  ``completetimeout``) asks for the final result after that much silence instead: when it is
  exactly one whole choice the turn ends there; otherwise the turn waits on to
  ``silence_ms`` (``incompletetimeout``), and if the caller speaks again in between, the
  recogniser decodes the turn's audio from its start again, so the answer is decoded whole.
* A free-form recogniser costs ~70-190 ms to create, ~0.5-1.6 s of CPU on its first
  ``AcceptWaveform`` of 0.6 s or more, and tens of MB: :class:`RecognizerPool` makes them
  ahead of need on its own thread, warms them (0.6 s of silence, then ``Reset()``) and takes
  them back after a turn.
* This Korean model's unknown-word token is ``<UNK>``, not ``[unk]``: it is looked up in the
  model's own word table.
* A grammar recogniser forces whatever it hears onto the grammar's words: hold music, tones,
  beeps, hum and noise came out as choices (``bench/false_accepts.py``). A
  :class:`SpeechnessMeter` measures each stretch of sound the energy detector took for
  speech; when it ends (or every half second while it goes on) and the sound is not a voice,
  the turn forgets it (the recogniser is reset, nothing is decided) and listens on as if it
  had been silence; the same sound is not taken for speech again until ``silence_ms`` of
  quiet. So music, tones and noise end a turn as ``noinput``, never as a choice or a
  ``nomatch``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import vosk

from ivrbot.media.vad import BlockSplitter, NoiseFloor, power_dbfs
from ivrbot.speech.speech_model import unknown_token
from ivrbot.speech.speechness import SpeechnessMeter, Verdict

__all__ = ["Recognition", "SpeechTurn"]

log = logging.getLogger(__name__)

# Process-wide: one pool of threads for vosk calls, sized by the machine's cores.
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


_FRAME_MS = 10
_BATCH_MS = 100  # audio handed to vosk per thread hop while speech goes on
_PRE_ROLL_MS = 300  # audio kept from before the detected onset and given to vosk with it
_ONSET_FRAMES = 3  # consecutive loud frames that start speech (30 ms)
_ABS_ON_DB = -50.0  # speech starts only above this level (dBFS)...
_ABS_OFF_DB = -56.0  # ...and goes on only above this one
_ON_MARGIN_DB = 15.0  # speech starts this far above the noise floor...
_OFF_MARGIN_DB = 9.0  # ...and goes on while it stays this far above it
_FLOOR_WINDOW_MS = 2000  # the noise floor is the quietest frame in this much audio
# complete_silence_ms: early final results per turn at most (speech after each one has the
# turn decoded again, so pauses on a noisy line cannot cost without bound)
_MAX_EARLY_FINALS = 3
_JUDGE_EVERY_MS = 500  # a long stretch of sound is judged speech or not this often

PartialCallback = Callable[[str], None]
# complete: complete_silence_ms after a complete answer; silence: silence_ms; max-speech;
# noinput: no speech in no_input_ms; finish: finish() was called
EndedBy = Literal["complete", "silence", "max-speech", "noinput", "finish"]
SpeechStartCallback = Callable[[], None]


class SpeechTurn:
    """One question's worth of listening: own endpointing in front of a vosk recogniser.

    Feed int16 mono audio as it arrives; :meth:`feed` returns a :class:`Recognition` once
    the turn has ended: ``silence_ms`` of silence after speech (own energy VAD),
    ``no_input_ms`` of audio with no speech (``noinput``), or ``max_speech_ms`` of speech.
    All times are audio time. Only audio from just before the detected speech onset reaches
    vosk, so waiting costs little CPU.

    ``complete_silence_ms`` (shorter than ``silence_ms``; None: off) ends the turn earlier
    when what was said is already a complete answer (:meth:`_complete`; a grammar turn: one
    whole choice): after that much silence vosk's final result is taken, and if it is
    complete the turn ends. If not, the turn goes on to ``silence_ms``; speech in between
    has the turn's audio decoded again from its start (a grammar recogniser decodes at
    about 0.05 s of CPU per second of audio), so an answer said with a pause is decoded as
    one utterance. vosk's partial result cannot make this call: it trails the audio by
    0.2-0.4 s with the Korean model.

    Speech start is decided per 10 ms frame inside :meth:`feed` (30 ms of loud audio), before
    and independently of the recogniser: ``feed`` queues audio for vosk in 100 ms batches on
    a thread and returns without waiting for it, except for the final result. So
    :meth:`speech_started` is true, and ``on_speech_start`` has been called, when the
    ``feed`` that completed the onset returns. ``partial`` holds vosk's latest partial
    hypothesis (all words so far), updated as the batches are decoded; ``on_partial`` is
    called on the event loop with each new one.

    With ``reject_nonspeech`` (the default) every sound the VAD starts on is measured
    (:class:`~ivrbot.speech.speechness.SpeechnessMeter`) when it ends and every 0.5 s while
    it goes on; one that is not a voice is forgotten (its verdict goes to ``rejected``) and
    the turn listens on: music, tones and noise end a turn as ``noinput``.

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
        complete_silence_ms: int | None = None,
        on_partial: PartialCallback | None = None,
        on_speech_start: SpeechStartCallback | None = None,
        reject_nonspeech: bool = True,
    ) -> None:
        if sample_rate <= 0 or sample_rate % (1000 // _FRAME_MS):
            raise ValueError(f"sample_rate must be a positive multiple of 100, not {sample_rate}")
        if complete_silence_ms is not None and complete_silence_ms <= 0:
            raise ValueError(f"complete_silence_ms must be positive, not {complete_silence_ms}")
        self.sample_rate = sample_rate
        self.silence_ms = silence_ms
        self.complete_silence_ms = complete_silence_ms
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
        self.ended_by: EndedBy | None = None  # how the turn ended
        # the sound since the onset, measured to tell a voice from music, tones and noise
        self._meter = SpeechnessMeter(sample_rate) if reject_nonspeech else None
        self._unmeasured: list[np.ndarray] = []
        self._ignoring = False  # in a sound judged not speech: no onset until quiet again
        self.rejected: list[Verdict] = []  # sounds judged not speech in this turn
        # complete_silence_ms: the turn's audio since the onset (kept to decode it again),
        # and whether vosk's final result was taken in the current silence (early final)
        self._turn_audio: list[np.ndarray] | None = None
        self._early = False
        self._early_tried = False  # in this run of silence
        self._early_finals = 0
        self._resume_run = 0  # loud frames in a row after speech started
        self._segments: list[dict[str, Any]] = []
        self._result: Recognition | None = None
        self._tail: asyncio.Task[None] | None = None  # the last vosk call queued
        self._closing: asyncio.Task[None] | None = None  # the final vosk call
        self._lock = asyncio.Lock()
        self._rec_lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------

    def speech_started(self) -> bool:
        """True while the turn hears speech: from the energy VAD's onset (use it for
        barge-in) on, unless the sound is then judged not to be a voice and forgotten."""
        return self._speech

    def speech_s(self) -> float:
        """Seconds of the current stretch of speech, from its onset to its last loud frame."""
        return max(0, self._speech_frames - self._silent_run) * _FRAME_MS / 1000

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
            frames = self._splitter.push(pcm)
            levels = power_dbfs(frames) if len(frames) else None
            start = 0
            while True:
                end, start = self._scan(frames, levels, start)
                if end is not None and end != "noinput" and not self._sounds_like_speech():
                    self._forget_sound()
                    continue  # listen on, from the next frame
                if end == "judge":
                    continue
                if end != "complete?":
                    break
                if await self._final_if_complete():
                    self.ended_by = "complete"
                    assert self._result is not None
                    return self._result
            if end is None:
                if self._pending_frames * _FRAME_MS >= _BATCH_MS:
                    self._submit(self._take_pending(), final=False)
                return None
            self.ended_by = end
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
                self.ended_by = "finish"
                if self._speech and not self._sounds_like_speech():
                    self._forget_sound()
                if not self._speech:
                    self._end(Recognition("noinput", "", None, 0.0))
                else:
                    await self._finalise()
            assert self._result is not None
            return self._result

    # -- voice activity ---------------------------------------------------------------------

    def _scan(
        self, frames: np.ndarray, levels: np.ndarray | None, start: int
    ) -> tuple[Literal["noinput", "silence", "max-speech", "complete?", "judge"] | None, int]:
        """Run the VAD over ``frames[start:]`` (whole 10 ms frames, ``levels`` their dBFS);
        queue audio for vosk; say whether the turn ended, or whether it is time to see if
        the answer is complete, or to judge whether a long sound is speech (then scanning
        goes on from the returned index)."""
        n = len(frames)
        if n == 0 or levels is None:
            return None, start
        silence_frames = max(1, self.silence_ms // _FRAME_MS)
        complete_frames = silence_frames
        if self.complete_silence_ms is not None:
            complete_frames = max(1, self.complete_silence_ms // _FRAME_MS)
        no_input_frames = max(1, self.no_input_ms // _FRAME_MS)
        max_speech_frames = max(1, self.max_speech_ms // _FRAME_MS)
        judge_frames = _JUDGE_EVERY_MS // _FRAME_MS
        for i in range(start, n):
            level = float(levels[i])
            frame = frames[i]
            self._frames += 1
            floor = self._floor.update(level)
            if self._ignoring:  # a sound judged not speech goes on: wait for quiet
                if level <= max(_ABS_OFF_DB, floor + _OFF_MARGIN_DB):
                    self._silent_run += 1
                    self._ignoring = self._silent_run < silence_frames
                else:
                    self._silent_run = 0
                if self._frames >= no_input_frames:
                    return "noinput", i + 1
                continue
            if not self._speech:
                if level > max(_ABS_ON_DB, floor + _ON_MARGIN_DB):
                    self._loud_run += 1
                else:
                    self._loud_run = 0
                self._pre_roll.append(frame)
                if self._loud_run >= _ONSET_FRAMES:
                    self._speech_onset()
                elif self._frames >= no_input_frames:
                    return "noinput", i + 1
                continue
            off = max(_ABS_OFF_DB, floor + _OFF_MARGIN_DB)
            if level <= off:
                self._silent_run += 1
                self._resume_run = 0
            else:
                self._silent_run = 0
                self._resume_run += 1
                self._early_tried = False
                if self._early and self._resume_run >= _ONSET_FRAMES:  # not a click
                    self._speak_again()
            self._queue(frame)
            self._speech_frames += 1
            if self._silent_run >= silence_frames:
                return "silence", i + 1
            if self._speech_frames >= max_speech_frames:
                return "max-speech", i + 1
            if self._silent_run >= complete_frames and not self._early_tried:
                self._early_tried = True
                return "complete?", i + 1
            if self._meter is not None and self._speech_frames % judge_frames == 0:
                return "judge", i + 1
        return None, n

    def _speech_onset(self) -> None:
        self._speech = True
        self.speech_started_at = time.monotonic()
        self.speech_onset_ms = (self._frames - self._loud_run) * _FRAME_MS
        self._speech_frames = self._loud_run
        self._silent_run = 0
        if self.complete_silence_ms is not None and self.complete_silence_ms < self.silence_ms:
            self._turn_audio = []
        if self._meter is not None:
            self._meter.reset()
            self._unmeasured = []  # the pre-roll comes in through _queue
        self._queue(*self._pre_roll)
        self._pre_roll.clear()
        if self.on_speech_start is not None:
            try:
                self.on_speech_start()
            except Exception:
                log.exception("on_speech_start callback failed")

    def _queue(self, *frames: np.ndarray) -> None:
        if self._meter is not None and self._speech:
            self._unmeasured.extend(frames)
        if self._turn_audio is not None:
            self._turn_audio.extend(frames)
        if not self._early:  # after an early final, silence waits here (see _speak_again)
            self._pending.extend(frames)
            self._pending_frames += len(frames)

    def _sounds_like_speech(self) -> bool:
        """Whether the sound since the onset could be a voice (always, when not checked)."""
        if self._meter is None or not self._speech:
            return True
        if self._unmeasured:
            self._meter.feed(np.concatenate(self._unmeasured))
            self._unmeasured.clear()
        verdict = self._meter.verdict()
        if verdict.speech:
            return True
        self.rejected.append(verdict)
        log.debug("not speech, ignored: %s", verdict)
        return False

    def _forget_sound(self) -> None:
        """The sound since the onset is not speech: listen on as if it had been silence. The
        recogniser forgets it (reset behind the calls already queued)."""
        self._speech = False
        self._ignoring = True
        self.speech_started_at = None
        self.speech_onset_ms = None
        self._loud_run = self._silent_run = self._resume_run = 0
        self._speech_frames = 0
        self._turn_audio = None
        self._early = self._early_tried = False
        self._early_finals = 0
        self._pending.clear()
        self._pending_frames = 0
        self._unmeasured.clear()
        self._tail = asyncio.ensure_future(self._call_reset(self._tail))

    async def _call_reset(self, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.shield(before)
        await asyncio.get_running_loop().run_in_executor(_asr_executor(), self._reset_recognizer)
        if self.partial:
            self.partial = ""

    def _reset_recognizer(self) -> None:
        # FinalResult, not Reset: after Reset vosk goes on decoding the frames it had not
        # decoded yet (the forgotten sound) into the next answer; a final result flushes them
        # and the next audio starts a new utterance.
        with self._rec_lock:
            if self._rec is not None and not self._closed:
                self._rec.FinalResult()
            self._segments = []

    def _speak_again(self) -> None:
        """Speech after an early final that was not complete: decode the whole turn again,
        as one utterance (vosk's final result reset the recogniser)."""
        assert self._turn_audio is not None
        self._early = False
        self._segments = []  # no vosk call is running: the early final was awaited
        self._pending = list(self._turn_audio)
        self._pending_frames = len(self._pending)

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

    async def _final_if_complete(self) -> bool:
        """``complete_silence_ms`` of silence: take vosk's final result; end the turn when
        it is a complete answer. Otherwise the recogniser hears nothing more until speech."""
        if self._turn_audio is None or self._early or self._early_finals >= _MAX_EARLY_FINALS:
            return False
        self._early = True
        self._early_finals += 1
        early = self._submit(self._take_pending(), final=True)
        await asyncio.shield(early)
        if self._result is None and self._complete():
            self._end(self._recognition())
            return True
        return False

    async def _finalise(self) -> None:
        if self._closing is None:
            if self._early and self._tail is not None:  # nothing said since the early final
                self._closing = self._tail
            else:
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
        self._turn_audio = None
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

    def _complete(self) -> bool:
        """Whether vosk's final result so far is a complete answer (see
        ``complete_silence_ms``); default: never."""
        return False

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
