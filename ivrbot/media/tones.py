"""Call-progress audio the gateway plays itself: ringback and music on hold."""

from __future__ import annotations

from functools import cache

import numpy as np

from ivrbot.media.frames import WIRE_RATE

RINGBACK_HZ = (440.0, 480.0)  # North American ringback: 2 s on, 4 s off
HOLD_NOTES_HZ = (523.25, 659.25, 783.99, 659.25)  # C5 E5 G5 E5, a soft arpeggio


def _sine_sum(freqs: tuple[float, ...], seconds: float, dbfs: float) -> np.ndarray:
    t = np.arange(int(seconds * WIRE_RATE)) / WIRE_RATE
    wave = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
    return np.asarray(wave) * (32767 * 10 ** (dbfs / 20))


def _frozen(pcm: np.ndarray) -> np.ndarray:
    """Read-only over immutable bytes, as a cached prompt: legs send it pre-encoded (see
    ivrbot.media.wire_prompt)."""
    return np.frombuffer(pcm.astype(np.int16).tobytes(), np.int16)


@cache
def ringback() -> np.ndarray:
    """One 6 s cycle of ringback at 48 kHz (loop it)."""
    on = _sine_sum(RINGBACK_HZ, 2.0, -16.0)
    return _frozen(np.concatenate((on, np.zeros(4 * WIRE_RATE))))


@cache
def hold_music() -> np.ndarray:
    """A 2 s arpeggio at 48 kHz with soft note envelopes (loop it)."""
    notes = []
    for freq in HOLD_NOTES_HZ:
        note = _sine_sum((freq,), 0.5, -18.0)
        envelope = np.minimum(
            1.0, np.minimum(np.arange(note.size), note.size - np.arange(note.size)) / 1200
        )
        notes.append(note * envelope)
    return _frozen(np.concatenate(notes))
