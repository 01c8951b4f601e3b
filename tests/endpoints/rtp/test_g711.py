"""G.711 tables against ITU-T G.711 reference codewords and its quantisation bounds."""

from __future__ import annotations

import numpy as np
import pytest

from ivrbot.endpoints.rtp import g711
from ivrbot.testing.audio import sine

pytestmark = pytest.mark.unit

ALL = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)


@pytest.mark.parametrize(
    ("law", "code", "value"),
    [
        # A-law (G.711 table 1a, even bits inverted): the smallest magnitudes and the peaks
        ("PCMA", 0xD5, 8),
        ("PCMA", 0x55, -8),
        ("PCMA", 0xAA, 32256),
        ("PCMA", 0x2A, -32256),
        ("PCMA", 0xD4, 24),
        # µ-law (table 2a, all bits inverted): zero twice, the peaks
        ("PCMU", 0xFF, 0),
        ("PCMU", 0x7F, 0),
        ("PCMU", 0x80, 32124),
        ("PCMU", 0x00, -32124),
        ("PCMU", 0xFE, 8),
    ],
)
def test_reference_codewords_decode_and_encode_back(law: str, code: int, value: int) -> None:
    assert int(g711.decode(bytes([code]), law)[0]) == value
    if value != 0 or code == 0xFF:  # µ-law's negative zero 0x7F is never produced
        assert g711.encode(np.array([value], np.int16), law) == bytes([code])


@pytest.mark.parametrize(("law", "silent"), [("PCMA", 0xD5), ("PCMU", 0xFF)])
def test_silence_encodes_to_the_idle_codeword(law: str, silent: int) -> None:
    assert g711.silence(law, 160) == bytes([silent]) * 160


@pytest.mark.parametrize("law", g711.LAWS)
def test_every_codeword_survives_decode_then_encode(law: str) -> None:
    codes = np.arange(256, dtype=np.uint8)
    again = np.frombuffer(g711.encode(g711.decode(codes.tobytes(), law), law), np.uint8)
    differ = codes[again != codes]
    assert differ.tolist() == ([0x7F] if law == "PCMU" else [])  # -0 comes back as +0


@pytest.mark.parametrize("law", g711.LAWS)
def test_round_trip_error_is_bounded_over_the_whole_int16_range(law: str) -> None:
    """Within half a quantisation step: segments hold 16 steps, each segment's steps
    twice the last's, so the error stays under 8 + |x|/32 (8: the smallest half-step
    plus the input's truncation to 13 or 14 bits), clipping at the peaks included."""
    value = ALL.astype(np.int32)
    back = g711.decode(g711.encode(ALL, law), law).astype(np.int32)
    error = np.abs(back - value)
    assert np.all(error <= 8 + np.abs(value) / 32), int(
        value[np.argmax(error - np.abs(value) / 32)]
    )
    assert np.all(np.sign(back) * np.sign(value) >= 0)  # never the wrong sign
    assert error.mean() > 1  # the law quantises: a table of identities would not pass


@pytest.mark.parametrize("law", g711.LAWS)
def test_a_tone_keeps_g711_signal_to_noise(law: str) -> None:
    tone = sine(1000, 1.0, 8000, dbfs=-12)
    back = g711.decode(g711.encode(tone, law), law).astype(np.float64)
    noise = back - tone
    snr = 10 * np.log10(np.sum(tone.astype(np.float64) ** 2) / np.sum(noise**2))
    assert snr > 30  # ~38 dB for noise-like input; a 1 kHz tone at 8 kHz hits 8 values only
