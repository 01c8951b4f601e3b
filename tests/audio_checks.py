"""Measuring test audio: sine generators and the energy of one frequency (Goertzel)."""

from __future__ import annotations

import numpy as np


def sine(freq: float, seconds: float, rate: int = 48000, dbfs: float = -12.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    amplitude = 32767 * 10 ** (dbfs / 20)
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def tone_dbfs(pcm: np.ndarray, freq: float, rate: int = 48000) -> float:
    """Level of ``freq`` in ``pcm`` (dBFS of an equivalent sine), by Goertzel over all samples."""
    x = pcm.astype(np.float64) / 32768.0
    if x.size == 0:
        return -120.0
    n = np.arange(x.size)
    projection = np.abs(np.dot(x, np.exp(-2j * np.pi * freq * n / rate)))
    amplitude = 2 * projection / x.size
    return float(20 * np.log10(max(amplitude, 1e-6)))
