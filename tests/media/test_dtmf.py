"""In-band DTMF generation and detection against spec/dtmf.md (ivrbot.media.dtmf)."""

from __future__ import annotations

import fractions
import shutil
import subprocess
import wave
from collections.abc import Callable
from functools import partial
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs import (
    G722Decoder,
    G722Encoder,
    OpusDecoder,
    OpusEncoder,
    PcmaDecoder,
    PcmaEncoder,
    PcmuDecoder,
    PcmuEncoder,
)
from aiortc.codecs.base import Decoder, Encoder
from aiortc.jitterbuffer import JitterFrame

from ivrbot.media.dtmf import DIGITS, DtmfDetector, tone, tones
from ivrbot.testing.audio import resample_pcm as resample

RATES = (8000, 16000, 48000)
Pcm = npt.NDArray[np.int16]
DBM0 = -3.0  # 0 dBm0 in dBFS (peak of each sine)


def silence(rate: int, ms: int) -> Pcm:
    return np.zeros(rate * ms // 1000, dtype=np.int16)


def detect(pcm: Pcm, rate: int, chunk: int | None = None) -> str:
    """Feed ``pcm`` padded with silence in 20 ms chunks (or ``chunk`` samples)."""
    detector = DtmfDetector(rate)
    x = np.concatenate([silence(rate, 50), pcm, silence(rate, 200)])
    step = chunk or rate // 50
    return "".join(d for i in range(0, x.size, step) for d in detector.feed(x[i : i + step]))


def detect_aligned(make: Callable[[str], Pcm], rate: int, offsets: int = 3) -> list[str]:
    """Detect each digit's signal after ``offsets`` random leads of 0-10 ms (so the tone
    starts at different points of the detector's 4 ms block grid); results in order."""
    rng = np.random.default_rng(rate)
    results = []
    for digit in DIGITS:
        for _ in range(offsets):
            lead = np.zeros(int(rng.integers(0, rate // 100)), dtype=np.int16)
            results.append(detect(np.concatenate([lead, make(digit)]), rate))
    return results


def each_digit(offsets: int = 3) -> list[str]:
    """What :func:`detect_aligned` returns when every digit is found once each time."""
    return [d for d in DIGITS for _ in range(offsets)]


# --- generation ----------------------------------------------------------------------------


def spectrum_peaks(pcm: Pcm, rate: int) -> list[float]:
    spec = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(pcm.size)))
    freqs = np.fft.rfftfreq(pcm.size, 1 / rate)
    low = freqs < 1100
    return [float(freqs[low][np.argmax(spec[low])]), float(freqs[~low][np.argmax(spec[~low])])]


def amplitude_at(pcm: Pcm, freq: float, rate: int) -> float:
    n = np.arange(pcm.size)
    return float(
        2 * np.abs(np.dot(pcm.astype(np.float64), np.exp(-2j * np.pi * freq * n / rate))) / pcm.size
    )


@pytest.mark.unit
def test_tone_frequencies_levels_and_twist() -> None:
    pairs = {"1": (697, 1209), "5": (770, 1336), "9": (852, 1477), "D": (941, 1633)}
    for digit, (low, high) in pairs.items():
        pcm = tone(digit, 16000, 500)
        assert pcm.dtype == np.int16 and pcm.size == 8000
        assert spectrum_peaks(pcm, 16000) == pytest.approx([low, high], abs=2)
    pcm = tone("5", 8000, 1000, level_dbfs=-20.0, twist_db=-6.0, freq_offset=0.015)
    row = amplitude_at(pcm, 770 * 1.015, 8000)
    col = amplitude_at(pcm, 1336 * 1.015, 8000)
    assert 20 * np.log10(row / 32767) == pytest.approx(-20.0, abs=0.1)
    assert 20 * np.log10(col / row) == pytest.approx(-6.0, abs=0.1)
    assert int(np.abs(tone("0", 8000, 100, level_dbfs=0.0)).max()) == 32767  # clipped, no wrap
    assert tone("a", 8000).size == tone("A", 8000).size == 800
    with pytest.raises(ValueError):
        tone("E", 8000)


@pytest.mark.unit
def test_tones_layout() -> None:
    pcm = tones("12#", 8000, duration_ms=50, gap_ms=60)
    assert pcm.size == 8 * (50 + 60 + 50 + 60 + 50)
    assert not pcm[400:880].any() and pcm[880:1280].any()
    assert tones("", 8000).size == 0


# --- detection -----------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("rate", RATES)
def test_all_digits(rate: int) -> None:
    assert detect(tones(DIGITS, rate), rate) == DIGITS
    assert detect(tones(DIGITS.lower(), rate, 40, 50), rate) == DIGITS  # fastest cycle: 90 ms


@pytest.mark.unit
@pytest.mark.parametrize("rate", RATES)
def test_duration_40ms_found_23ms_never(rate: int) -> None:
    assert detect_aligned(lambda d: tone(d, rate, 40), rate) == each_digit()
    assert detect_aligned(lambda d: tone(d, rate, 23), rate) == [""] * 48
    # a burst of 23 ms tones with 10 ms gaps is not a digit either
    burst = np.concatenate([tone("5", rate, 23), silence(rate, 10)] * 2)
    assert detect(burst[: -rate // 100], rate) == ""


@pytest.mark.unit
@pytest.mark.parametrize("rate", RATES)
def test_frequency_tolerance(rate: int) -> None:
    for offset in (-0.015, 0.015):
        got = detect_aligned(partial(tone, rate=rate, duration_ms=60, freq_offset=offset), rate, 1)
        assert got == each_digit(1), offset
    for offset in (-0.035, 0.035):
        got = detect_aligned(partial(tone, rate=rate, duration_ms=200, freq_offset=offset), rate, 1)
        assert got == [""] * 16, offset


@pytest.mark.unit
@pytest.mark.parametrize("rate", RATES)
def test_twist_and_levels(rate: int) -> None:
    # twist: 8 dB normal (column weaker), 4 dB reverse (row weaker), at the level extremes
    cases = [
        (DBM0, -8.0),  # 0 dBm0 row, column 8 dB down
        (DBM0 - 4.0, 4.0),  # 0 dBm0 column, row 4 dB down
        (DBM0 - 25.0 + 8.0, -8.0),  # column at -25 dBm0
        (DBM0 - 25.0, 4.0),  # row at -25 dBm0
        (DBM0, 0.0),  # both at 0 dBm0: the sum clips
        (DBM0 - 25.0, 0.0),
    ]
    for level, twist in cases:
        got = detect_aligned(
            partial(tone, rate=rate, duration_ms=40, level_dbfs=level, twist_db=twist), rate, 1
        )
        assert got == each_digit(1), (level, twist)
    # ignore anything below -55 dBm0
    assert detect(tones(DIGITS, rate, 100, 70, DBM0 - 56.0), rate) == ""


@pytest.mark.unit
@pytest.mark.parametrize("rate", RATES)
def test_repeats_and_dropouts(rate: int) -> None:
    rng = np.random.default_rng(1)
    for digit in DIGITS:
        # a 40 ms pause separates two presses of the same digit
        twice = np.concatenate([tone(digit, rate, 60), silence(rate, 40), tone(digit, rate, 60)])
        assert detect(twice, rate) == digit * 2
        # a 10 ms dropout inside one tone is bridged
        held = tone(digit, rate, 150)
        start = int(rng.integers(rate * 30 // 1000, rate * 100 // 1000))
        held[start : start + rate // 100] = 0
        assert detect(held, rate) == digit
    # a long press is one digit, and a different digit right after it is reported
    long_then_other = np.concatenate([tone("7", rate, 1500), tone("8", rate, 60)])
    assert detect(long_then_other, rate) == "78"


@pytest.mark.unit
def test_any_chunk_size_and_reset() -> None:
    pcm = np.concatenate([silence(48000, 13), tones("159D", 48000, 45, 55)])
    for chunk in (1, 7, 160, 961, 4096, pcm.size + 10000):
        assert detect(pcm, 48000, chunk) == "159D", chunk
    detector = DtmfDetector(8000)
    start = tone("3", 8000, 100)[:400]
    assert detector.feed(start) == ["3"]  # reported within the first 50 ms
    detector.reset()
    assert detector.feed(tone("3", 8000, 100)) == ["3"]  # a new press after reset
    assert detector.feed(np.zeros(0, dtype=np.int16)) == []
    with pytest.raises(ValueError):
        DtmfDetector(44100)


# --- through the codecs the gateway uses -----------------------------------------------------

CODECS: dict[str, tuple[type[Encoder], type[Decoder], int]] = {
    "PCMU": (PcmuEncoder, PcmuDecoder, 8000),
    "PCMA": (PcmaEncoder, PcmaDecoder, 8000),
    "Opus": (OpusEncoder, OpusDecoder, 48000),
    "G722": (G722Encoder, G722Decoder, 16000),
}


def through_codec(pcm: Pcm, rate: int, name: str) -> tuple[Pcm, int]:
    """Encode 20 ms frames with aiortc's encoder and decode them again (mono out)."""
    encoder_cls, decoder_cls, _ = CODECS[name]
    encoder, decoder = encoder_cls(), decoder_cls()
    n = rate // 50
    out: list[Pcm] = []
    out_rate = rate
    for i in range(0, pcm.size - n + 1, n):
        frame = av.AudioFrame.from_ndarray(
            pcm[i : i + n].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = fractions.Fraction(1, rate)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            for decoded in decoder.decode(JitterFrame(payload, timestamp)):
                assert isinstance(decoded, av.AudioFrame)
                samples = decoded.to_ndarray().reshape(-1, len(decoded.layout.channels))
                out.append(samples.mean(axis=1).astype(np.int16))
                out_rate = decoded.sample_rate
    return np.concatenate(out), out_rate


@pytest.mark.unit
@pytest.mark.parametrize("name", list(CODECS))
def test_through_codecs(name: str) -> None:
    rate = CODECS[name][2]
    for level, twist in ((-10.0, 0.0), (DBM0 - 25.0 + 8.0, -8.0), (DBM0 - 25.0, 4.0)):
        pcm = np.concatenate(
            [silence(rate, 40)]
            + [np.concatenate([tone(d, rate, 40, level, twist), silence(rate, 50)]) for d in DIGITS]
            + [silence(rate, 200)]
        )
        decoded, out_rate = through_codec(pcm, rate, name)
        assert detect(decoded, out_rate) == DIGITS, (level, twist)


# --- talk-off ------------------------------------------------------------------------------

SENTENCES = [
    "Thank you for calling. Please press one for sales, two for support, "
    "or stay on the line to speak with an agent.",
    "Your appointment is confirmed for Tuesday at three thirty in the afternoon.",
    "I'm sorry, I didn't catch that. Could you please repeat your account number?",
    "Ooooh, aaaah, eeeee, la la la la, do re mi fa so la ti do.",
]
VOICES = [("en-us", 50), ("en+f3", 80), ("en-gb+f5", 99), ("en+m3", 20)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Pcm, int]:
    """About a minute of espeak-ng speech (22050 Hz) in four voices and pitches."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder: Path = tmp_path_factory.mktemp("speech")
    parts: list[Pcm] = []
    for i, (voice, pitch) in enumerate(VOICES):
        for j, text in enumerate(SENTENCES):
            path = folder / f"{i}-{j}.wav"
            subprocess.run(
                ["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(path), text], check=True
            )
            with wave.open(str(path)) as w:
                assert w.getframerate() == 22050
                parts.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
    return np.concatenate(parts), 22050


@pytest.mark.e2e
@pytest.mark.parametrize("rate", RATES)
def test_no_digits_in_speech(speech: tuple[Pcm, int], rate: int) -> None:
    pcm = resample(speech[0], speech[1], rate)
    assert pcm.size > 50 * rate
    loud = np.clip(pcm.astype(np.float64) * 3.0, -32768, 32767).astype(np.int16)
    assert detect(pcm, rate) == ""
    assert detect(loud, rate) == ""


@pytest.mark.e2e
def test_speech_does_not_mask_digits(speech: tuple[Pcm, int]) -> None:
    """The talk-off checks still let digits through once the speech stops."""
    pcm = resample(speech[0][: 22050 * 5], 22050, 8000)
    mixed = np.concatenate([pcm, tones("147*", 8000, 60, 60)])
    assert detect(mixed, 8000) == "147*"


@pytest.mark.unit
def test_no_digits_in_synthetic_music() -> None:
    rng = np.random.default_rng(7)
    rate = 16000
    notes = []
    for _ in range(150):  # 1-3 note chords with five harmonics each, decaying
        t = np.arange(int(rate * rng.uniform(0.1, 0.5))) / rate
        chord = np.zeros_like(t)
        for _ in range(int(rng.integers(1, 4))):
            f0 = 440 * 2 ** (int(rng.integers(-24, 14)) / 12)
            for h in range(1, 6):
                chord += 0.5**h * np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6))
        notes.append(chord * np.exp(-t * rng.uniform(1, 6)))
    music = np.concatenate(notes)
    pcm = (music / np.abs(music).max() * 12000).astype(np.int16)
    assert detect(pcm, rate) == ""
