"""Building blocks for energy-based voice activity detection on streamed int16 PCM.

Shared by the recogniser's endpointer (:mod:`ivrbot.speech.asr`), the answering-machine
detector and the beep detector (:mod:`ivrbot.media.amd`):

* :class:`BlockSplitter` cuts a stream of chunks of any size into whole blocks (frames,
  or overlapping analysis windows) and keeps the remainder for the next chunk;
* :func:`power_dbfs` and :func:`mean_abs_dbfs` give one level per block, vectorised;
* :class:`NoiseFloor` tracks the quietest level of a sliding window (minimum statistics).

Levels are in dB relative to 32768 (int16 full scale): ``power_dbfs`` is the mean-square
level (a full-scale sine reads -3 dBFS), ``mean_abs_dbfs`` the mean absolute sample value
(what Asterisk's silence detector compares with its threshold; a full-scale sine reads
-3.9 dBFS).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import numpy.typing as npt

__all__ = ["BlockSplitter", "NoiseFloor", "mean_abs_dbfs", "power_dbfs"]

_FULL_SCALE_DB = 20.0 * math.log10(32768.0)


class BlockSplitter:
    """Blocks of ``length`` samples every ``hop`` samples (default: back to back).

    :meth:`push` returns the complete blocks that the new chunk makes available, as a
    ``(n, length)`` array (possibly a view of the input: copy before mutating), and keeps
    what is left over. :attr:`position` is the stream index of the next block's first
    sample, so block ``i`` of a push starts at ``position_before_push + i * hop``.
    """

    def __init__(self, length: int, hop: int | None = None) -> None:
        if length <= 0 or (hop is not None and not 0 < hop <= length):
            raise ValueError(f"bad block length {length} / hop {hop}")
        self.length = length
        self.hop = hop or length
        self.position = 0
        self._rest: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)

    def push(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        audio = np.concatenate((self._rest, pcm)) if self._rest.size else pcm
        n = (len(audio) - self.length) // self.hop + 1 if len(audio) >= self.length else 0
        if n <= 0:
            self._rest = audio.copy() if audio is pcm else audio
            return np.zeros((0, self.length), dtype=audio.dtype)
        if self.hop == self.length:
            blocks = audio[: n * self.length].reshape(n, self.length)
        else:
            windows = np.lib.stride_tricks.sliding_window_view(audio, self.length)
            blocks = windows[:: self.hop][:n]
        self._rest = audio[n * self.hop :].copy()
        self.position += n * self.hop
        return blocks

    def reset(self) -> None:
        self.position = 0
        self._rest = np.zeros(0, dtype=np.int16)


def power_dbfs(blocks: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """Mean-square level of each row of ``blocks`` in dBFS (about -90 for digital silence)."""
    power = np.mean(np.square(blocks, dtype=np.float64), axis=1)
    return 10.0 * np.log10(power + 1.0) - _FULL_SCALE_DB


def mean_abs_dbfs(blocks: npt.NDArray[np.int16]) -> npt.NDArray[np.float64]:
    """Mean absolute sample value of each row in dB re 32768 (-inf for digital silence)."""
    mean_abs = np.mean(np.abs(blocks.astype(np.int32)), axis=1)
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(mean_abs) - _FULL_SCALE_DB


class NoiseFloor:
    """The quietest level of the last ``window`` updates (minimum statistics).

    Speech has pauses, so a floor taken under speech stays low; steady noise, however loud,
    becomes its own floor within one window.
    """

    def __init__(self, window: int) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, not {window}")
        self.window = window
        self._count = 0
        self._levels: deque[tuple[int, float]] = deque()  # (update number, level), rising

    def update(self, level: float) -> float:
        """Add one level; the floor including it."""
        self._count += 1
        levels = self._levels
        while levels and levels[-1][1] >= level:
            levels.pop()
        levels.append((self._count, level))
        while levels[0][0] <= self._count - self.window:
            levels.popleft()
        return levels[0][1]
