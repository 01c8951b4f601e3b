"""Is a stretch of sound speech? Music, tones and line noise are told apart from a voice.

A listening turn's energy detector (:mod:`ivrbot.speech.asr`) starts on anything loud: hold
music, a ringback or busy tone, a beep, hum, a burst of noise. A grammar recogniser then
forces that sound onto the grammar's words (``bench/false_accepts.py``: 85 of 108 music
clips were heard as a choice). :class:`SpeechnessMeter` looks at the same sound and says
whether it could be a voice, from five measures over its loud frames (32 ms windows every
10 ms; levels and spectra over 100-4000 Hz, where a voice is and Opus's slow decay after
a click is not). Thresholds, from the corpus of :mod:`ivrbot.testing.nonspeech` and the
spoken choices (espeak-ng Korean at 150-250 words a minute, directly and through Opus):

* **length**: at least 10 loud frames: the shortest spoken choice had 20 (네 at 250
  words a minute); Chromium's fake microphone (20 ms beeps) through Opus, 5;
* **stationarity**: at most 25 % of frames whose spectrum is nearly the same (cosine
  similarity above 0.97) as 50 ms before. A voice's spectrum keeps moving (the pitch
  glides, formants move from sound to sound): at most 11 % in the spoken choices; notes,
  chords and tones hold still (42-97 %; hum 97 %);
* **tonality**: at most 0.85 of a frame's energy (median frame) in its six strongest bins:
  a voice spreads it over many harmonics (at most 0.78); tones and plain melodies 0.87-1.0;
* **flatness**: spectral flatness (geometric over arithmetic mean of the power, median
  frame) at most 0.2: voices 0.07 at most; noise is flat (white 0.56, pink 0.39, crackle
  0.55);
* **level movement**: a spread (standard deviation) of the level over the sound, within
  40 dB of its loudest frame, of at least 3 dB: syllables make a voice rise and fall
  (3.8 dB and up); brown noise stays within 1.7-2.8 dB.

Babble (other voices) is speech to all of these: a grammar turn rejects some of it from
what the recogniser heard (:mod:`ivrbot.speech.turns`).

Cost: one 512-point FFT per 10 ms of sound, vectorised per chunk, 4.5-5 ms of CPU per
second of audio (``bench/false_accepts.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ivrbot.media.vad import BlockSplitter

__all__ = ["SpeechnessMeter", "Verdict"]

_WINDOW_MS = 32
_HOP_MS = 10
_LAG = 5  # frames: the spectrum 50 ms before
_LOW_HZ, _HIGH_HZ = 100.0, 4000.0
_ACTIVE_BELOW_PEAK_DB = 30.0  # frames this far under the loudest one are pauses
_ACTIVE_FLOOR_DBFS = -56.0  # ...and so are frames under this level
_SPREAD_RANGE_DB = 40.0

# Thresholds (see the module docstring for what they were measured on).
MAX_STATIONARY = 0.25
MAX_TONALITY = 0.85
MIN_LEVEL_SPREAD_DB = 3.0
MAX_FLATNESS = 0.2
_SIMILAR = 0.97
_MIN_FRAMES = 10  # fewer loud frames: too short for a word


@dataclass(frozen=True, repr=False)
class Verdict:
    """The measures of one stretch of sound and whether they say speech."""

    frames: int  # loud frames (10 ms each)
    stationary: float  # share of frames with the spectrum of 50 ms before
    tonality: float  # share of energy in the six strongest bins (median frame)
    level_spread_db: float  # standard deviation of the level
    flatness: float  # spectral flatness (median frame)

    @property
    def reason(self) -> str:
        """Why it is not speech ('' when it is)."""
        if self.frames < _MIN_FRAMES:
            return "too short"
        if self.stationary > MAX_STATIONARY:
            return "steady spectrum (music or a tone)"
        if self.tonality > MAX_TONALITY:
            return "a few pure frequencies (a tone)"
        if self.flatness > MAX_FLATNESS:
            return "flat spectrum (noise)"
        if self.level_spread_db < MIN_LEVEL_SPREAD_DB:
            return "steady level (music or noise)"
        return ""

    @property
    def speech(self) -> bool:
        return not self.reason

    def __repr__(self) -> str:
        return (
            f"Verdict(frames={self.frames}, stationary={self.stationary:.2f}, "
            f"tonality={self.tonality:.2f}, level_spread_db={self.level_spread_db:.1f}, "
            f"flatness={self.flatness:.2f}, reason={self.reason!r})"
        )


class SpeechnessMeter:
    """Measures a stream of int16 mono audio, chunk by chunk; :meth:`verdict` judges all of
    it since the last :meth:`reset`. Keeps five numbers per 10 ms, not the audio."""

    def __init__(self, sample_rate: int = 16000) -> None:
        self.sample_rate = sample_rate
        self._window = 1 << int(np.ceil(np.log2(sample_rate * _WINDOW_MS / 1000)))
        self._splitter = BlockSplitter(self._window, sample_rate * _HOP_MS // 1000)
        self._taper = np.hanning(self._window)
        freqs = np.fft.rfftfreq(self._window, 1.0 / sample_rate)
        self._band = (freqs >= _LOW_HZ) & (freqs <= _HIGH_HZ)
        self._history: npt.NDArray[np.float64] = np.zeros((0, int(self._band.sum())))
        self._level: list[npt.NDArray[np.float64]] = []  # dBFS, all frequencies
        self._band_level: list[npt.NDArray[np.float64]] = []  # dB (unscaled), in the band
        self._similar: list[npt.NDArray[np.bool_]] = []
        self._tonality: list[npt.NDArray[np.float64]] = []
        self._flatness: list[npt.NDArray[np.float64]] = []

    def reset(self) -> None:
        """Forget what was measured (and the audio held for the next window)."""
        self._splitter.reset()
        self._history = np.zeros((0, self._history.shape[1]))
        self._level.clear()
        self._band_level.clear()
        self._similar.clear()
        self._tonality.clear()
        self._flatness.clear()

    def feed(self, pcm: npt.NDArray[np.int16]) -> None:
        blocks = self._splitter.push(pcm)
        if not len(blocks):
            return
        x = blocks.astype(np.float64)
        power = np.mean(np.square(x), axis=1)
        self._level.append(10.0 * np.log10(power + 1.0) - 90.309)
        spectrum = np.abs(np.fft.rfft(x * self._taper, axis=1))[:, self._band] + 1e-3
        energy = np.square(spectrum)
        total = np.sum(energy, axis=1)
        self._band_level.append(10.0 * np.log10(total))
        self._flatness.append(np.exp(np.mean(np.log(energy), axis=1)) / (total / energy.shape[1]))
        self._tonality.append(np.sum(np.sort(energy, axis=1)[:, -6:], axis=1) / total)
        unit = spectrum / np.linalg.norm(spectrum, axis=1, keepdims=True)
        both = np.concatenate((self._history, unit))
        similar = np.zeros(len(unit), dtype=bool)  # the stream's first frames have no lag
        comparable = len(both) - _LAG  # the last ones of this chunk (history <= _LAG rows)
        if comparable > 0:
            similar[-comparable:] = np.sum(both[_LAG:] * both[:comparable], axis=1) > _SIMILAR
        self._similar.append(similar)
        self._history = both[-_LAG:]

    def verdict(self) -> Verdict:
        """Whether what was fed since the last reset sounds like a voice."""
        if not self._level:
            return Verdict(0, 0.0, 0.0, 0.0, 0.0)
        level = np.concatenate(self._band_level)
        peak = float(np.max(level))
        active = (np.concatenate(self._level) > _ACTIVE_FLOOR_DBFS) & (
            level > peak - _ACTIVE_BELOW_PEAK_DB
        )
        count = int(np.count_nonzero(active))
        if count < _MIN_FRAMES:
            return Verdict(count, 0.0, 0.0, 0.0, 0.0)
        where = np.nonzero(active)[0]
        span = np.maximum(level[where[0] : where[-1] + 1], peak - _SPREAD_RANGE_DB)
        judged = active.copy()
        judged[: min(_LAG, judged.size)] = False  # no frame 50 ms before them
        similar = np.concatenate(self._similar)[judged]
        return Verdict(
            frames=count,
            stationary=float(np.mean(similar)) if similar.size else 0.0,
            tonality=float(np.median(np.concatenate(self._tonality)[active])),
            level_spread_db=float(np.std(span)),
            flatness=float(np.median(np.concatenate(self._flatness)[active])),
        )
