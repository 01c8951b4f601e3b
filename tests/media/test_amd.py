"""Answering-machine and beep detection (ivrbot.media.amd) on synthesised audio."""

from __future__ import annotations

import fractions
import functools
import io
import math
import shutil
import subprocess
import wave

import av
import numpy as np
import numpy.typing as npt
import pytest
from aiortc.codecs import PcmuDecoder, PcmuEncoder
from aiortc.jitterbuffer import JitterFrame

from ivrbot.media.amd import (
    AmdResult,
    AmdSettings,
    AnsweringMachineDetector,
    BeepDetector,
    dbfs_from_asterisk_threshold,
)
from ivrbot.media.dtmf import DIGITS, tone, tones
from ivrbot.media.frames import resample
from ivrbot.testing.audio import sine

RATE = 16000
CHUNK = RATE // 50  # 20 ms, one packet
Pcm = npt.NDArray[np.int16]

MACHINE_GREETINGS = {
    "en": "Hi, you have reached the Smith family. We can't come to the phone right now. "
    "Please leave a message after the tone.",
    "en-us": "Hi, you have reached the Smith family. We can't come to the phone right now. "
    "Please leave a message after the tone.",
    "ko": "안녕하세요, 김민수입니다. 지금은 전화를 받을 수 없습니다. "
    "삐 소리가 나면 메시지를 남겨 주세요.",
}
HELLO = {"en": "Hello?", "en-us": "Hello?", "ko": "여보세요?"}
LEVELS = (-16.0, -26.0, -32.0)  # active speech level, dBFS (P.56 nominal is -26 dBov)


# --- signals -------------------------------------------------------------------------------


def silence(ms: float, rate: int = RATE) -> Pcm:
    return np.zeros(round(rate * ms / 1000), dtype=np.int16)


def noise(ms: float, dbfs: float = -20.0, rate: int = RATE, seed: int = 1) -> Pcm:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 32768.0 * 10 ** (dbfs / 20), round(rate * ms / 1000))
    return np.clip(x, -32768, 32767).astype(np.int16)


def beep(freq: float, ms: float, dbfs: float, rate: int = RATE) -> Pcm:
    """A sine whose peak is at ``dbfs``."""
    return sine(freq, ms / 1000, rate, dbfs)


@functools.cache
def say(text: str, voice: str, pitch: int = 50) -> Pcm:
    """espeak-ng speech resampled to 16 kHz (cached per test session)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    return resample(pcm, rate, RATE)


def at_level(pcm: Pcm, dbfs: float) -> Pcm:
    """``pcm`` scaled so that its active level (10 ms frames within 40 dB of the loudest)
    is ``dbfs`` (RMS re 32768)."""
    frames = pcm[: pcm.size // 160 * 160].reshape(-1, 160).astype(np.float64)
    power = np.mean(frames**2, axis=1)
    active = float(np.mean(power[power > power.max() * 1e-4]))
    gain = 10 ** (dbfs / 20) * 32768.0 / math.sqrt(active)
    return np.clip(np.round(pcm * gain), -32768, 32767).astype(np.int16)


def pcmu_round_trip(pcm: Pcm) -> Pcm:
    """8 kHz audio through aiortc's PCMU encoder and decoder in 20 ms packets."""
    encoder, decoder = PcmuEncoder(), PcmuDecoder()
    out: list[Pcm] = []
    for i in range(0, pcm.size - 159, 160):
        frame = av.AudioFrame.from_ndarray(pcm[i : i + 160].reshape(1, -1), "s16", "mono")
        frame.sample_rate, frame.pts, frame.time_base = 8000, i, fractions.Fraction(1, 8000)
        payloads, timestamp = encoder.encode(frame)
        for payload in payloads:
            for decoded in decoder.decode(JitterFrame(payload, timestamp)):
                assert isinstance(decoded, av.AudioFrame)
                out.append(decoded.to_ndarray().reshape(-1).astype(np.int16))
    return np.concatenate(out)


# --- running the detectors -------------------------------------------------------------------


def run_amd(
    pcm: Pcm, settings: AmdSettings | None = None, rate: int = RATE, chunk: int | None = None
) -> AmdResult:
    amd = AnsweringMachineDetector(rate, settings)
    step = chunk or rate // 50
    for i in range(0, pcm.size, step):
        result = amd.feed(pcm[i : i + step])
        if result is not None:
            return result
    return amd.finish()


def beep_ends(
    pcm: Pcm, rate: int = RATE, chunk: int | None = None, **options: float
) -> list[float]:
    detector = BeepDetector(rate, **options)
    step = chunk or rate // 50
    ends = [detector.feed(pcm[i : i + step]) for i in range(0, pcm.size, step)]
    return [e for e in ends if e is not None]


# --- settings ------------------------------------------------------------------------------


@pytest.mark.unit
def test_defaults_are_asterisks() -> None:
    s = AmdSettings()
    assert (s.initial_silence, s.greeting, s.after_greeting_silence) == (2500, 1500, 800)
    assert (s.total_analysis_time, s.min_word_length, s.between_words_silence) == (5000, 100, 50)
    assert (s.maximum_number_of_words, s.maximum_word_length) == (2, 5000)
    assert s.silence_threshold_dbfs == pytest.approx(-42.14, abs=0.01)
    assert dbfs_from_asterisk_threshold(256) == s.silence_threshold_dbfs
    assert dbfs_from_asterisk_threshold(512) == pytest.approx(-36.12, abs=0.01)
    for bad in ({"greeting": 0}, {"frame_ms": 50}, {"maximum_number_of_words": -1}):
        with pytest.raises(ValueError):
            AmdSettings(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        dbfs_from_asterisk_threshold(0)
    with pytest.raises(ValueError):
        AnsweringMachineDetector(44110)
    with pytest.raises(ValueError):
        AnsweringMachineDetector().feed(np.zeros(10, dtype=np.float32))


# --- the state machine, on exact synthetic signals -------------------------------------------


def words(*segments: tuple[str, float]) -> Pcm:
    """("v", ms) is voice (noise at -20 dBFS), ("s", ms) silence."""
    parts = [
        noise(ms, seed=i) if kind == "v" else silence(ms) for i, (kind, ms) in enumerate(segments)
    ]
    return np.concatenate(parts)


@pytest.mark.unit
def test_short_greeting_then_silence_is_human() -> None:
    r = run_amd(words(("s", 300), ("v", 400), ("s", 2000)))
    assert r == AmdResult("human", "HUMAN", 1, 400, 300 + 400 + 800, "HUMAN-800-800")


@pytest.mark.unit
def test_a_third_word_is_a_machine() -> None:
    pcm = words(("s", 500), ("v", 200), ("s", 100), ("v", 200), ("s", 100), ("v", 200), ("s", 900))
    # the third word is counted 100 ms (min_word_length) into it
    assert run_amd(pcm) == AmdResult("machine", "MAXWORDS", 3, 500, 1200, "MAXWORDS-3-2")
    # two words are not: silence after them decides HUMAN
    r = run_amd(words(("s", 500), ("v", 200), ("s", 100), ("v", 200), ("s", 900)))
    assert (r.verdict, r.cause, r.words, r.decided_at_ms) == ("human", "HUMAN", 2, 1800)


@pytest.mark.unit
def test_first_word_counts_only_after_silence() -> None:
    """Asterisk starts "in a word": voice from the first frame starts the greeting but is
    not counted, so three words from t=0 count as two."""
    pcm = words(("v", 200), ("s", 100), ("v", 200), ("s", 100), ("v", 200), ("s", 900))
    assert run_amd(pcm) == AmdResult("human", "HUMAN", 2, 600, 1600, "HUMAN-800-800")


@pytest.mark.unit
def test_gaps_shorter_than_between_words_silence_do_not_split_words() -> None:
    pcm = words(("s", 300), ("v", 200), ("s", 40), ("v", 200), ("s", 40), ("v", 200), ("s", 900))
    r = run_amd(pcm)
    assert (r.verdict, r.words, r.greeting_ms) == ("human", 1, 600)
    r = run_amd(pcm, AmdSettings(frame_ms=10, between_words_silence=40))
    assert (r.verdict, r.cause, r.words) == ("machine", "MAXWORDS", 3)


@pytest.mark.unit
def test_long_greeting_and_long_word() -> None:
    assert run_amd(noise(3000)) == AmdResult(
        "machine", "LONGGREETING", 0, 1500, 1500, "LONGGREETING-1500-1500"
    )
    r = run_amd(noise(3000), AmdSettings(greeting=4000, maximum_word_length=1000))
    assert (r.verdict, r.cause, r.decided_at_ms, r.detail) == (
        "machine",
        "MAXWORDLENGTH",
        1000,
        "MAXWORDLENGTH-1000",
    )


@pytest.mark.unit
def test_initial_silence() -> None:
    """Asterisk decides MACHINE (cause INITIALSILENCE) after initial_silence with no word;
    initial_silence_verdict="notsure" reports it as NOTSURE instead."""
    quiet = noise(6000, dbfs=-60.0)
    assert run_amd(quiet) == AmdResult(
        "machine", "INITIALSILENCE", 0, 0, 2500, "INITIALSILENCE-2500-2500"
    )
    r = run_amd(quiet, AmdSettings(initial_silence_verdict="notsure"))
    assert (r.verdict, r.cause, r.decided_at_ms) == ("notsure", "INITIALSILENCE", 2500)
    # voice shorter than a word keeps the detector in the initial silence
    r = run_amd(np.concatenate([silence(1500), noise(60), silence(5000)]))
    assert (r.cause, r.decided_at_ms, r.greeting_ms) == ("INITIALSILENCE", 1560 + 2500, 60)


@pytest.mark.unit
def test_too_long_and_hangup() -> None:
    clicks = np.concatenate([np.concatenate([noise(40, seed=i), silence(360)]) for i in range(15)])
    assert run_amd(clicks) == AmdResult("notsure", "TOOLONG", 0, 520, 5000, "TOOLONG-5000")
    amd = AnsweringMachineDetector(RATE)
    assert amd.feed(words(("s", 300), ("v", 400), ("s", 300))) is None
    assert amd.elapsed_ms == 1000
    hangup = amd.finish()
    assert (hangup.verdict, hangup.cause, hangup.words, hangup.decided_at_ms) == (
        "notsure",
        "HANGUP",
        1,
        1000,
    )
    assert amd.feed(silence(2000)) is hangup and amd.result is hangup


@pytest.mark.unit
def test_threshold_is_asterisks_mean_absolute_value() -> None:
    """Asterisk: a frame is silent when mean |sample| < 256."""
    for mean_abs, verdict in ((270, "machine"), (240, "machine")):
        amplitude = mean_abs * math.pi / 2  # a sine's mean |x| is 2A/pi
        level = 20 * math.log10(amplitude / 32767)
        r = run_amd(np.concatenate([silence(200), sine(300, 3.0, RATE, level)]))
        assert r.verdict == verdict
        assert r.cause == ("LONGGREETING" if mean_abs > 256 else "INITIALSILENCE")


@pytest.mark.unit
@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_rates_chunks_and_frames(rate: int) -> None:
    pcm = resample(words(("s", 500), ("v", 200), ("s", 100), ("v", 200), ("s", 900)), RATE, rate)
    expected = run_amd(pcm, rate=rate)
    assert (expected.verdict, expected.decided_at_ms) == ("human", 1800)
    for chunk in (1, 7, 1000, pcm.size):
        assert run_amd(pcm, rate=rate, chunk=chunk) == expected
    ten = run_amd(pcm, AmdSettings(frame_ms=10), rate=rate)
    assert (ten.verdict, ten.words, ten.decided_at_ms) == ("human", 2, 1800)


# --- espeak-ng speech ----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("voice", ["en", "en-us", "ko"])
def test_hello_is_human(voice: str, level: float) -> None:
    speech = at_level(say(HELLO[voice], voice), level)
    r = run_amd(np.concatenate([silence(300), speech, silence(3000)]))
    assert (r.verdict, r.cause) == ("human", "HUMAN"), r
    # decided after_greeting_silence after the last loud frame (speech ends in a quiet tail)
    assert r.decided_at_ms <= 300 + speech.size * 1000 // RATE + 800 + 20


@pytest.mark.e2e
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("voice", ["en", "en-us"])
def test_hello_this_is_kim_is_human_with_four_words_allowed(voice: str, level: float) -> None:
    """ "Hello, this is Kim." is three words by Asterisk's energy rules ("Hello", "this is",
    "Kim"): its defaults (a third word is a machine) usually call it MACHINE/MAXWORDS.
    Allowing three words makes it human, and the machine greetings below stay machines."""
    speech = at_level(say("Hello, this is Kim.", voice), level)
    pcm = np.concatenate([silence(300), speech, silence(3000)])
    r = run_amd(pcm, AmdSettings(maximum_number_of_words=3))
    assert (r.verdict, r.cause) == ("human", "HUMAN"), r
    assert 2 <= r.words <= 3


@pytest.mark.e2e
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("voice", ["en", "en-us", "ko"])
def test_machine_greeting_then_beep(voice: str, level: float) -> None:
    greeting = at_level(say(MACHINE_GREETINGS[voice], voice), level)
    lead = silence(300)
    pcm = np.concatenate([lead, greeting, silence(400), beep(1000, 500, -15.0), silence(1500)])
    beep_end_ms = (lead.size + greeting.size + (400 + 500) * RATE / 1000) * 1000 / RATE
    amd, beeps = AnsweringMachineDetector(RATE), BeepDetector(RATE)
    result: AmdResult | None = None
    found: list[tuple[float, int]] = []  # (beep end, samples fed when it was reported)
    for i in range(0, pcm.size, CHUNK):
        chunk = pcm[i : i + CHUNK]
        result = result or amd.feed(chunk)
        end = beeps.feed(chunk)
        if end is not None:
            found.append((end, i + chunk.size))
    assert result is not None and result.verdict == "machine", result
    assert result.cause in ("MAXWORDS", "LONGGREETING")
    assert result.decided_at_ms < (lead.size + greeting.size) * 1000 / RATE  # before it ends
    for settings in (AmdSettings(maximum_number_of_words=3), AmdSettings(frame_ms=10)):
        assert run_amd(pcm, settings).verdict == "machine"
    assert len(found) == 1, found
    end, reported_at = found[0]
    assert abs(end - beep_end_ms) <= 30.0
    assert reported_at * 1000 / RATE - beep_end_ms <= 60.0  # reported soon after


# --- beep detector -------------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("freq", [440.0, 1000.0, 1400.0])
@pytest.mark.parametrize("level", [-10.0, -20.0, -30.0])
def test_beeps_found_with_their_end(freq: float, level: float) -> None:
    for lead_ms in (300.0, 303.7):
        pcm = np.concatenate([silence(lead_ms), beep(freq, 500, level), silence(300)])
        detector = BeepDetector(RATE)
        ends = [e for i in range(0, pcm.size, CHUNK) if (e := detector.feed(pcm[i : i + CHUNK]))]
        assert len(ends) == 1
        assert ends[0] == pytest.approx(lead_ms + 500, abs=5.0)
        (found,) = detector.beeps
        assert found.freq_hz == pytest.approx(freq, abs=2.0)
        assert found.level_dbfs == pytest.approx(level, abs=0.5)
        assert found.start_ms == pytest.approx(lead_ms, abs=12.0)
        assert found.duration_ms == pytest.approx(500, abs=12.0)


@pytest.mark.unit
def test_beep_duration_frequency_and_noise_limits() -> None:
    def one(signal: Pcm, max_ms: float = 4000.0) -> list[float]:
        return beep_ends(np.concatenate([silence(200), signal, silence(300)]), max_ms=max_ms)

    assert len(one(beep(1000, 120, -20))) == 1
    assert one(beep(1000, 100, -20)) == []
    assert len(one(beep(850, 3500, -20))) == 1
    assert one(beep(850, 4500, -20)) == []  # longer than max_ms: a steady tone, not a beep
    assert len(one(beep(850, 4500, -20), max_ms=5000)) == 1
    assert one(beep(300, 500, -20)) == [] and one(beep(2500, 500, -20)) == []
    assert one(beep(1000, 500, -50)) == []  # below min_level_dbfs
    noisy = beep(1000, 400, -30) + noise(400, -55)
    assert one(noisy) == [pytest.approx(600, abs=5)]
    gliding = (8000 * np.sin(2 * np.pi * np.cumsum(np.linspace(800, 1200, 8000)) / RATE)).astype(
        np.int16
    )
    assert one(gliding) == []  # a sweep is not a steady tone


@pytest.mark.unit
def test_no_beep_in_dtmf_or_two_tone_call_progress() -> None:
    assert beep_ends(tones(DIGITS * 3, RATE)) == []
    assert beep_ends(tones(DIGITS, RATE, 300, 100, -8.0)) == []
    for twist in (-8.0, -6.0, 4.0):
        presses = np.concatenate([tone(d, RATE, 400, -12.0, twist) for d in DIGITS])
        assert beep_ends(presses) == [], twist
    t = np.arange(2 * RATE) / RATE
    for pair in ((440.0, 480.0), (350.0, 440.0), (480.0, 620.0)):  # ringback, dial, busy (US)
        pcm = (4000 * (np.sin(2 * np.pi * pair[0] * t) + np.sin(2 * np.pi * pair[1] * t))).astype(
            np.int16
        )
        assert beep_ends(np.concatenate([pcm, silence(300)])) == [], pair


@pytest.mark.unit
def test_chunking_several_beeps_and_reset() -> None:
    pcm = np.concatenate(
        [silence(300), beep(1000, 300, -20), silence(300), beep(440, 150, -20), silence(200)]
    )
    for chunk in (1, 7, 160, 4096):
        assert beep_ends(pcm, chunk=chunk) == [
            pytest.approx(600, abs=2),
            pytest.approx(1050, abs=2),
        ]
    detector = BeepDetector(RATE)
    assert detector.feed(pcm) == pytest.approx(600, abs=2)  # one end per call, in order
    assert detector.feed(silence(0)) == pytest.approx(1050, abs=2)
    assert detector.feed(silence(0)) is None
    assert [round(b.freq_hz) for b in detector.beeps] == [1000, 440]
    detector.reset()
    assert detector.beeps == [] and detector.feed(pcm[: RATE // 2]) is None
    with pytest.raises(ValueError):
        BeepDetector(8000, max_hz=3950)
    with pytest.raises(ValueError):
        BeepDetector(RATE).feed(pcm.astype(np.int32))


@pytest.mark.unit
@pytest.mark.parametrize("freq", [440.0, 1000.0, 1400.0])
def test_beeps_through_pcmu(freq: float) -> None:
    """8 kHz through G.711 u-law, detected at 8 kHz and after resampling to 16 kHz."""
    for level in (-10.0, -30.0):
        pcm = np.concatenate([silence(300, 8000), beep(freq, 500, level, 8000), silence(400, 8000)])
        decoded = pcmu_round_trip(pcm)
        assert beep_ends(decoded, 8000) == [pytest.approx(800, abs=5)]
        assert beep_ends(resample(decoded, 8000, RATE)) == [pytest.approx(800, abs=5)]


@pytest.mark.unit
def test_machine_greeting_and_beep_through_pcmu() -> None:
    greeting = at_level(say(MACHINE_GREETINGS["en-us"], "en-us"), -26.0)
    pcm16 = np.concatenate([silence(300), greeting, silence(300), beep(1400, 300, -20)])
    truth_ms = pcm16.size * 1000 / RATE
    decoded = resample(
        pcmu_round_trip(resample(np.concatenate([pcm16, silence(500)]), RATE, 8000)), 8000, RATE
    )
    assert beep_ends(decoded) == [pytest.approx(truth_ms, abs=30)]
    assert run_amd(decoded).verdict == "machine"


VOICES = [("en-us", 50), ("en+f3", 80), ("en-gb+f5", 99), ("en+m3", 20), ("ko", 50)]
SPEECH = [
    "Thank you for calling. Please press one for sales, two for support, "
    "or stay on the line to speak with an agent.",
    "Your appointment is confirmed for Tuesday at three thirty in the afternoon.",
    "Ooooh, aaaah, eeeee, la la la la, do re mi fa so la ti do. Beeeeeep. Hmmmmmm.",
    MACHINE_GREETINGS["en"],
]
SPEECH_KO = MACHINE_GREETINGS["ko"] + " 아아아아, 오오오오, 우우우우."


@pytest.fixture(scope="module")
def long_speech() -> Pcm:
    """About 110 s of espeak-ng speech at 16 kHz: five voices, pitches 20-99, sung vowels."""
    parts = [
        say(text, voice, pitch)
        for voice, pitch in VOICES
        for text in (SPEECH if voice != "ko" else [SPEECH_KO, SPEECH_KO])
    ]
    return np.concatenate(parts)


@pytest.mark.e2e
def test_no_beep_in_speech(long_speech: Pcm) -> None:
    assert long_speech.size > 60 * RATE
    for level in (-12.0, -26.0):
        assert beep_ends(at_level(long_speech, level)) == []
    narrowband = resample(pcmu_round_trip(resample(long_speech, RATE, 8000)), 8000, RATE)
    assert beep_ends(narrowband) == []
