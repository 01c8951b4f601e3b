"""Audio frames: the PCM formats ivrbot moves around and conversions between them.

Inside ivrbot audio is int16 PCM in numpy arrays. What goes onto a WebRTC leg is 20 ms
``av.AudioFrame``s at 48 kHz; what the detectors and recognisers read is mono 16 kHz.
"""

from __future__ import annotations

import fractions

import av
import numpy as np

WIRE_RATE = 48000
PTIME_S = 0.020
WIRE_SAMPLES = int(WIRE_RATE * PTIME_S)
LISTEN_RATE = 16000


def frame_from_pcm(pcm: np.ndarray, pts: int, rate: int = WIRE_RATE) -> av.AudioFrame:
    """A mono s16 frame carrying ``pcm`` (int16)."""
    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def pcm_from_frame(frame: av.AudioFrame) -> np.ndarray:
    """Mono int16 samples of a packed s16 frame (stereo is averaged)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if channels == 1:
        return data.reshape(-1).astype(np.int16, copy=False)
    if channels == 2:  # Opus: every received frame; 4x cheaper than a sum along axis 1
        pairs = data.reshape(-1, 2)
        total = pairs[:, 0].astype(np.int32) + pairs[:, 1].astype(np.int32)
        return np.right_shift(total, 1).astype(np.int16)
    interleaved = data.reshape(-1, channels).astype(np.int32)
    return (interleaved.sum(axis=1) // channels).astype(np.int16)


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole mono int16 buffer (prompts, test signals) with libswresample."""
    if from_rate == to_rate or pcm.size == 0:
        return pcm.astype(np.int16, copy=False)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    out = [
        f.to_ndarray().reshape(-1) for f in resampler.resample(frame_from_pcm(pcm, 0, from_rate))
    ]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)


class Downsampler:
    """Streaming conversion of received wire frames to mono PCM at ``rate``."""

    def __init__(self, rate: int = LISTEN_RATE) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def convert(self, frame: av.AudioFrame) -> np.ndarray:
        frame.pts = None  # the resampler only needs the samples, not their timing
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not chunks:
            return np.zeros(0, np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)


def rms_dbfs(pcm: np.ndarray) -> float:
    """Level of int16 PCM in dBFS (-120 for digital silence)."""
    if pcm.size == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return -120.0 if rms < 1e-6 else 20.0 * float(np.log10(rms / 32768.0))
