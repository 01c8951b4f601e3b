"""Measuring test audio: sine generators and the energy of one frequency (Goertzel)."""

from __future__ import annotations

import fractions

import av
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


def loudest_window(
    pcm: np.ndarray, freq: float, rate: int = 48000, window_s: float = 0.25
) -> np.ndarray:
    """The ``window_s`` of ``pcm`` where ``freq`` is loudest (windows overlapping by half):
    where a short tone is, whatever the length of the recording around it."""
    size = int(window_s * rate)
    if pcm.size <= size:
        return pcm
    starts = range(0, pcm.size - size + 1, size // 2)
    best = max(starts, key=lambda i: tone_dbfs(pcm[i : i + size], freq, rate))
    return pcm[best : best + size]


def resample_pcm(pcm: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Mono int16 ``pcm`` from ``src`` Hz to ``dst`` Hz with FFmpeg's resampler (as the
    media path does), flushed to the end."""
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = src
    resampler = av.AudioResampler(format="s16", layout="mono", rate=dst)
    frames = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames])


def opus_round_trip(pcm: np.ndarray, rate: int = 16000, bit_rate: int = 32000) -> np.ndarray:
    """Mono int16 ``pcm`` at ``rate`` through Opus as WebRTC sends it (48 kHz stereo, 20 ms
    packets), decoded and back to mono at ``rate``."""
    pcm48 = resample_pcm(pcm, rate, 48000)
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "s16"
    encoder.bit_rate = bit_rate
    encoder.time_base = fractions.Fraction(1, 48000)
    decoder = av.CodecContext.create("opus", "r")
    decoder.sample_rate, decoder.layout = 48000, "stereo"
    stereo = np.repeat(pcm48, 2)
    to_mono = av.AudioResampler(format="s16", layout="mono", rate=48000)
    out: list[np.ndarray] = []
    for start in range(0, len(pcm48) - 959, 960):
        frame = av.AudioFrame.from_ndarray(
            stereo[2 * start : 2 * start + 1920].reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, start
        for packet in encoder.encode(frame):
            for decoded in decoder.decode(packet):
                out.extend(f.to_ndarray().reshape(-1) for f in to_mono.resample(decoded))
    return resample_pcm(np.concatenate(out), 48000, rate)
