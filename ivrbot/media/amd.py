"""Answering-machine detection (AMD) and voicemail-beep detection for outbound calls.

:class:`AnsweringMachineDetector`
    Asterisk's ``AMD()`` application (app_amd.c, Asterisk 16+) as a streaming detector, with
    the same parameters, defaults and causes. The audio is cut into frames of
    ``frame_ms`` (20 ms by default, what Asterisk sees on a 20 ms ptime call); a frame is
    *silent* when its mean absolute sample value is below ``silence_threshold_dbfs``
    (Asterisk's ``ast_dsp_silence()``), otherwise it is *voice*. Per frame, in this order
    (all durations are audio time; "silence" is the current run of silent frames):

    1. the total time reaches ``total_analysis_time``: NOTSURE, cause ``TOOLONG``;
    2. a silent frame:

       * silence >= ``between_words_silence``: the current word ends (the state becomes
         "in silence" and the consecutive-voice counter restarts);
       * no word heard yet and silence >= ``initial_silence``: MACHINE, ``INITIALSILENCE``
         (Asterisk's verdict; ``initial_silence_verdict="notsure"`` reports NOTSURE
         instead, for campaigns that treat a silent callee as unknown);
       * a greeting has started and silence >= ``after_greeting_silence``: HUMAN, ``HUMAN``;
    3. a voice frame (adds to the consecutive voice and to the total voice):

       * consecutive voice >= ``min_word_length`` while "in silence": one more word, and
         the state becomes "in word";
       * consecutive voice >= ``maximum_word_length``: MACHINE, ``MAXWORDLENGTH``;
       * words > ``maximum_number_of_words``: MACHINE, ``MAXWORDS``. The default 2 thus
         means a third word decides MACHINE (Asterisk 16+ compares with ``>`` and defaults
         to 2; older releases compared with ``>=`` and defaulted to 3: the same rule);
       * a greeting has started and total voice >= ``greeting``: MACHINE, ``LONGGREETING``;
       * consecutive voice >= ``min_word_length``: the greeting starts (once).

    Like Asterisk, the detector starts in the "in word" state: the first word is counted
    only if at least ``between_words_silence`` of silence precedes it (the first packets
    of an answered call are normally silent), although it starts the greeting either way.
    Asterisk's real-time guard (``NOAUDIODATA`` when no frame arrives) is the caller's job:
    this class only sees the audio it is fed. :meth:`AnsweringMachineDetector.finish`
    reports audio that ended before a decision (Asterisk's ``HANGUP``).

    Threshold: Asterisk's ``silence_threshold = 256`` is a mean absolute sample value on
    the int16 scale; 20*log10(256/32768) = -42.1 dB re full scale
    (:func:`dbfs_from_asterisk_threshold`). In other terms that is the level of a sine of
    -38.2 dBFS peak (-41.2 dBFS RMS), or of speech-like (Laplacian) noise of about
    -39 dBFS RMS; ITU-T P.56 nominal speech (-26 dBov) is about 13 dB above it.

    In practice (espeak-ng, ``tests/media/test_amd.py``, ``bench/amd.py``): "Hello?" is
    HUMAN 800 ms after it ends; machine greetings are MACHINE 1.1-2 s into the greeting;
    but "Hello, this is Kim." is three words by these rules ("Hello", "this is", "Kim")
    and the defaults usually call it MACHINE/MAXWORDS, as Asterisk would.
    ``maximum_number_of_words=3`` keeps it HUMAN and still calls those greetings machines.

:class:`BeepDetector`
    Finds the end of a voicemail beep: one steady sine of ``min_hz``..``max_hz`` lasting at
    least ``min_ms``. Every 10 ms a Hann-windowed block of 32 ms (31 Hz bins) is
    transformed (one batched real FFT per chunk). A block is *tonal* when the strongest
    bin in the band, with its two neighbours each side (the window's main lobe, +-62 Hz),
    holds at least ``min_purity`` of the block's power above 100 Hz, and the tone (level
    of the equivalent sine, peak dBFS) is at least ``min_level_dbfs``. Speech spreads its
    power over many harmonics 80-300 Hz apart; DTMF puts it in two tones (a single tone
    of a DTMF pair holds at most 86 % at 8 dB twist). Consecutive tonal blocks whose
    frequency (parabolic interpolation) moves less than ``max(10 Hz, 1 %)`` per block
    form a run. When a run ends, its *core* (blocks within 3 dB of the run's loudest,
    i.e. whose window centre lies inside the tone) must be gap-free, last ``min_ms`` to
    ``max_ms`` (counted in 10 ms blocks, so about +-10 ms) and keep its frequency within
    ``max(20 Hz, 2 %)``. The end is then located to a few ms by demodulating the audio at
    the tone's frequency (4 ms moving average) and finding where the amplitude falls
    through half the core's. It is reported about 40 ms after the beep ends.

    Any steady single tone in the band counts, so a 425 Hz call-progress tone (European
    ringback or busy) is a beep to it; two-tone signals (US ringback, dial and busy tones)
    and DTMF are not. Measured: ends found within 0.5 ms for clean and G.711 beeps (Opus
    and G.722 add their codec delay, 6.5 and 1.4 ms); no false beep in 110 s of espeak-ng
    speech (five voices, pitches 20-99, sung vowels, two levels, also through PCMU); about
    2.3 ms of CPU per second of audio in 20 ms chunks (``bench/amd.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ivrbot.media.vad import BlockSplitter, mean_abs_dbfs

__all__ = [
    "ASTERISK_SILENCE_THRESHOLD",
    "AmdResult",
    "AmdSettings",
    "AnsweringMachineDetector",
    "Beep",
    "BeepDetector",
    "Verdict",
    "dbfs_from_asterisk_threshold",
]

Verdict = Literal["human", "machine", "notsure"]
Pcm = npt.NDArray[np.int16]

ASTERISK_SILENCE_THRESHOLD = 256  # amd.conf silence_threshold: mean |sample| on the int16 scale


def dbfs_from_asterisk_threshold(threshold: float) -> float:
    """Asterisk's ``silence_threshold`` (mean absolute int16 value) in dB re full scale."""
    if threshold <= 0:
        raise ValueError(f"the threshold must be positive, not {threshold}")
    return 20.0 * math.log10(threshold / 32768.0)


def _check_pcm(pcm: npt.NDArray[np.int16]) -> None:
    if pcm.dtype != np.int16 or pcm.ndim != 1:
        raise ValueError(f"expected 1-D int16 mono audio, got {pcm.dtype} {pcm.shape}")


# ---------------------------------------------------------------------------------------------
# Answering-machine detection


@dataclass(frozen=True)
class AmdSettings:
    """Asterisk ``amd.conf`` parameters (durations in ms of audio) and their defaults."""

    initial_silence: int = 2500  # silence before any word longer than this: MACHINE
    greeting: int = 1500  # voice in a greeting reaching this: MACHINE (LONGGREETING)
    after_greeting_silence: int = 800  # silence after a greeting reaching this: HUMAN
    total_analysis_time: int = 5000  # no decision by then: NOTSURE (TOOLONG)
    min_word_length: int = 100  # consecutive voice that makes a word
    between_words_silence: int = 50  # silence that ends a word
    maximum_number_of_words: int = 2  # more words than this: MACHINE (MAXWORDS)
    maximum_word_length: int = 5000  # one word this long: MACHINE (MAXWORDLENGTH)
    silence_threshold_dbfs: float = dbfs_from_asterisk_threshold(ASTERISK_SILENCE_THRESHOLD)
    frame_ms: int = 20  # analysis frame (Asterisk: the packet, usually 20 ms)
    initial_silence_verdict: Verdict = "machine"  # Asterisk's; "notsure" is a common choice

    def __post_init__(self) -> None:
        durations = {
            "initial_silence": self.initial_silence,
            "greeting": self.greeting,
            "after_greeting_silence": self.after_greeting_silence,
            "total_analysis_time": self.total_analysis_time,
            "min_word_length": self.min_word_length,
            "between_words_silence": self.between_words_silence,
            "maximum_word_length": self.maximum_word_length,
        }
        for name, value in durations.items():
            if value <= 0:
                raise ValueError(f"AmdSettings.{name} must be a positive number of ms")
        if self.maximum_number_of_words < 0:
            raise ValueError("AmdSettings.maximum_number_of_words must not be negative")
        if not 5 <= self.frame_ms <= 40:
            raise ValueError("AmdSettings.frame_ms must be 5..40")
        if self.initial_silence_verdict not in ("human", "machine", "notsure"):
            raise ValueError("AmdSettings.initial_silence_verdict: human, machine or notsure")


@dataclass(frozen=True)
class AmdResult:
    """The decision. ``cause`` is Asterisk's AMDCAUSE keyword (INITIALSILENCE, HUMAN,
    LONGGREETING, MAXWORDS, MAXWORDLENGTH, TOOLONG, or HANGUP when the audio ended first)
    and ``detail`` the whole AMDCAUSE as Asterisk formats it (e.g. ``MAXWORDS-3-2``).
    ``greeting_ms`` is the voice heard (Asterisk's voiceDuration) and ``decided_at_ms``
    the audio time of the decision, counted from the first sample fed."""

    verdict: Verdict
    cause: str
    words: int
    greeting_ms: int
    decided_at_ms: int
    detail: str = ""


class AnsweringMachineDetector:
    """Streaming AMD over int16 mono audio at ``rate`` (see the module documentation).

    Feed audio from the moment the call is answered; :meth:`feed` returns None until the
    decision, then the :class:`AmdResult` (again on every later call).
    """

    def __init__(self, rate: int = 16000, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        frame = rate * self.settings.frame_ms / 1000
        if rate <= 0 or frame != int(frame):
            raise ValueError(f"rate {rate} does not give whole {self.settings.frame_ms} ms frames")
        self.rate = rate
        self._splitter = BlockSplitter(int(frame))
        self._result: AmdResult | None = None
        self._total = 0  # iTotalTime
        self._silence = 0  # the current silence run (dspsilence)
        self._voice = 0  # voiceDuration
        self._consecutive = 0  # consecutiveVoiceDuration
        self._words = 0  # iWordsCount
        self._in_word = True  # currentState == STATE_IN_WORD (Asterisk starts there)
        self._in_greeting = False
        self._initial_silence = True

    @property
    def result(self) -> AmdResult | None:
        return self._result

    @property
    def elapsed_ms(self) -> int:
        """Audio analysed so far (whole frames)."""
        return self._total

    def feed(self, pcm: Pcm) -> AmdResult | None:
        """Add audio; the result once decided."""
        _check_pcm(pcm)
        if self._result is not None:
            return self._result
        frames = self._splitter.push(pcm)
        if len(frames):
            silent = mean_abs_dbfs(frames) < self.settings.silence_threshold_dbfs
            for is_silent in silent.tolist():
                if self._step(is_silent):
                    break
        return self._result

    def finish(self) -> AmdResult:
        """The audio has ended (hang-up): the result, or NOTSURE with cause HANGUP."""
        if self._result is None:
            self._decide("notsure", "HANGUP", "")
        assert self._result is not None
        return self._result

    def _step(self, silent: bool) -> bool:
        """One frame of app_amd's loop; True once decided."""
        s = self.settings
        frame_ms = s.frame_ms
        self._total += frame_ms
        if self._total >= s.total_analysis_time:
            return self._decide("notsure", "TOOLONG", f"{self._total}")
        if silent:
            self._silence += frame_ms
            if self._silence >= s.between_words_silence:
                self._in_word = False
                self._consecutive = 0
            if self._initial_silence and self._silence >= s.initial_silence:
                detail = f"{self._silence}-{s.initial_silence}"
                return self._decide(s.initial_silence_verdict, "INITIALSILENCE", detail)
            if self._in_greeting and self._silence >= s.after_greeting_silence:
                return self._decide("human", "HUMAN", f"{self._silence}-{s.after_greeting_silence}")
            return False
        self._silence = 0
        self._consecutive += frame_ms
        self._voice += frame_ms
        if self._consecutive >= s.min_word_length and not self._in_word:
            self._words += 1
            self._in_word = True
        if self._consecutive >= s.maximum_word_length:
            return self._decide("machine", "MAXWORDLENGTH", f"{self._consecutive}")
        if self._words > s.maximum_number_of_words:
            detail = f"{self._words}-{s.maximum_number_of_words}"
            return self._decide("machine", "MAXWORDS", detail)
        if self._in_greeting and self._voice >= s.greeting:
            return self._decide("machine", "LONGGREETING", f"{self._voice}-{s.greeting}")
        if self._consecutive >= s.min_word_length and not self._in_greeting:
            self._initial_silence = False
            self._in_greeting = True
        return False

    def _decide(self, verdict: Verdict, cause: str, numbers: str) -> bool:
        detail = f"{cause}-{numbers}" if numbers else cause
        self._result = AmdResult(verdict, cause, self._words, self._voice, self._total, detail)
        return True


# ---------------------------------------------------------------------------------------------
# Beep detection

_BLOCK_MS = 32
_HOP_MS = 10
_LOBE = 2  # bins each side of the peak that hold a windowed sine's power
_CORE_DB = 3.0  # core blocks: within this of the run's loudest block
_STEP_HZ, _STEP_REL = 10.0, 0.01  # frequency change allowed from block to block
_SPREAD_HZ, _SPREAD_REL = 20.0, 0.02  # frequency range allowed over the core
_DEMOD_MS = 4.0  # moving average of the demodulated tone when locating its end
_LOW_CUT_HZ = 100.0  # power below this (hum, DC) is left out of the purity


@dataclass(frozen=True)
class Beep:
    """One beep heard: times in ms from the first sample fed, level as a sine's peak."""

    start_ms: float
    end_ms: float
    freq_hz: float
    level_dbfs: float

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms


@dataclass
class _Block:
    start: int  # stream index of the block's first sample
    freq: float
    level: float


class BeepDetector:
    """Streaming voicemail-beep detector over int16 mono audio at ``rate`` (module docs).

    :meth:`feed` returns the end time (ms from the first sample fed) of a beep that ended
    in the audio given so far, once per beep; :attr:`beeps` lists every beep found.
    """

    def __init__(
        self,
        rate: int = 16000,
        *,
        min_hz: float = 400.0,
        max_hz: float = 2000.0,
        min_ms: float = 120.0,
        max_ms: float = 4000.0,
        min_level_dbfs: float = -45.0,
        min_purity: float = 0.9,
    ) -> None:
        if rate <= 0 or rate % 100 or max_hz >= rate / 2 - 100:
            raise ValueError(f"unsupported rate {rate} for tones up to {max_hz} Hz")
        if not 0 < min_hz < max_hz or not 0 < min_ms < max_ms or not 0 < min_purity < 1:
            raise ValueError(
                "BeepDetector: need 0 < min_hz < max_hz, 0 < min_ms < max_ms, 0 < purity < 1"
            )
        self.rate = rate
        self.min_hz, self.max_hz = min_hz, max_hz
        self.min_ms, self.max_ms = min_ms, max_ms
        self.min_level_dbfs = min_level_dbfs
        self.min_purity = min_purity
        self._n = round(rate * _BLOCK_MS / 1000)
        self._hop = rate * _HOP_MS // 1000
        window = np.hanning(self._n)
        self._window = window.astype(np.float32)
        # mean square of a sine whose main lobe holds power P: 2 P / (N sum(w^2))
        self._power_to_ms = 2.0 / (self._n * float(np.sum(window**2)))
        freqs = np.fft.rfftfreq(self._n, 1.0 / rate)
        self._bin_hz = float(freqs[1])
        self._low = int(np.searchsorted(freqs, _LOW_CUT_HZ))
        self._band_lo = max(int(np.floor(min_hz / self._bin_hz)) - 1, _LOBE)
        self._band_hi = min(int(np.ceil(max_hz / self._bin_hz)) + 1, len(freqs) - 1 - _LOBE)
        self._keep = self._n + 10 * self._hop  # recent samples kept to locate a beep's end
        self.reset()

    def reset(self) -> None:
        """Forget all audio; times restart from zero."""
        self._splitter = BlockSplitter(self._n, self._hop)
        self._recent: Pcm = np.zeros(0, dtype=np.int16)
        self._fed = 0  # samples fed so far
        self._run: list[_Block] = []
        self._overlong = False
        self._pending: list[float] = []
        self.beeps: list[Beep] = []

    def feed(self, pcm: Pcm) -> float | None:
        """Add audio; the end time (ms) of a beep that has ended, else None."""
        _check_pcm(pcm)
        history = np.concatenate((self._recent, pcm)) if self._recent.size else pcm
        history_start = self._fed - self._recent.size
        first = self._splitter.position
        blocks = self._splitter.push(pcm)
        self._fed += pcm.size
        if len(blocks):
            tonal, freq, level = self._analyse(blocks)
            if self._run or tonal.any():
                for i in range(len(blocks)):
                    start = first + i * self._hop
                    self._track(
                        bool(tonal[i]),
                        start,
                        float(freq[i]),
                        float(level[i]),
                        history,
                        history_start,
                    )
        self._recent = history[-self._keep :].copy()
        return self._pending.pop(0) if self._pending else None

    # -- per block --------------------------------------------------------------------------

    def _analyse(
        self, blocks: Pcm
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        spectrum = np.fft.rfft(blocks.astype(np.float32) * self._window, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float64)
        total = power[:, self._low :].sum(axis=1)
        rows = np.arange(len(blocks))
        peak = self._band_lo + np.argmax(power[:, self._band_lo : self._band_hi + 1], axis=1)
        lobe = power[rows[:, None], peak[:, None] + np.arange(-_LOBE, _LOBE + 1)].sum(axis=1)
        purity = lobe / np.maximum(total, 1e-9)
        # parabolic interpolation of the log spectrum around the peak
        a, b, c = (np.log(power[rows, peak + d] + 1e-9) for d in (-1, 0, 1))
        curvature = a - 2.0 * b + c
        safe = np.where(curvature < 0, curvature, -1.0)
        delta = np.clip(0.5 * (a - c) / safe, -0.5, 0.5)
        freq = (peak + delta) * self._bin_hz
        amplitude = np.sqrt(2.0 * lobe * self._power_to_ms)
        level = 20.0 * np.log10(amplitude / 32768.0 + 1e-12)
        tonal = (
            (purity >= self.min_purity)
            & (level >= self.min_level_dbfs)
            & (freq >= self.min_hz)
            & (freq <= self.max_hz)
        )
        return tonal, freq, level

    def _track(
        self, tonal: bool, start: int, freq: float, level: float, history: Pcm, history_start: int
    ) -> None:
        run = self._run
        if tonal and run:
            previous = run[-1].freq
            if abs(freq - previous) <= max(_STEP_HZ, _STEP_REL * previous):
                if len(run) * _HOP_MS <= self.max_ms + 2 * _BLOCK_MS:
                    run.append(_Block(start, freq, level))
                else:
                    self._overlong = True
                return
        if run:
            self._finish_run(history, history_start)
        self._run = [_Block(start, freq, level)] if tonal else []
        self._overlong = False

    def _finish_run(self, history: Pcm, history_start: int) -> None:
        run, overlong = self._run, self._overlong
        levels = np.array([b.level for b in run])
        core = np.nonzero(levels >= levels.max() - _CORE_DB)[0]
        first, last = int(core[0]), int(core[-1])
        if overlong or len(core) != last - first + 1:
            return  # a dip inside: not one steady tone
        duration = len(core) * _HOP_MS
        if not self.min_ms - _HOP_MS / 2 <= duration <= self.max_ms:
            return
        freqs = np.array([b.freq for b in run[first : last + 1]])
        freq = float(np.median(freqs))
        if freqs.max() - freqs.min() > max(_SPREAD_HZ, _SPREAD_REL * freq):
            return
        level = float(np.median(levels[first : last + 1]))
        centre = self._n / 2
        start = run[first].start + centre
        end = run[last].start + centre
        end = self._locate_end(end, freq, level, history, history_start)
        scale = 1000.0 / self.rate
        beep = Beep(start * scale, end * scale, freq, level)
        self.beeps.append(beep)
        self._pending.append(beep.end_ms)

    def _locate_end(
        self, guess: float, freq: float, level: float, history: Pcm, history_start: int
    ) -> float:
        """The sample where the tone's amplitude falls through half of ``level``."""
        lo = max(int(guess) - self._n, history_start)
        hi = min(int(guess) + self._n, history_start + history.size)
        box = max(1, round(round(_DEMOD_MS * freq / 1000.0) * self.rate / freq))  # whole cycles
        if hi - lo < 2 * box:
            return guess
        n = np.arange(lo, hi)
        x = history[lo - history_start : hi - history_start].astype(np.float64)
        z = x * np.exp(-2j * np.pi * freq * n / self.rate)
        sums = np.concatenate(([0.0], np.cumsum(z)))
        amplitude = 2.0 * np.abs(sums[box:] - sums[:-box]) / box  # box starting at lo + i
        half = 0.5 * 32768.0 * 10.0 ** (level / 20.0)
        above = np.nonzero(amplitude >= half)[0]
        if above.size == 0:
            return guess
        i = int(above[-1])
        crossing = float(i)
        if i + 1 < amplitude.size and amplitude[i] > amplitude[i + 1]:  # between i and i + 1
            crossing += float((amplitude[i] - half) / (amplitude[i] - amplitude[i + 1]))
        return lo + crossing + box / 2.0
