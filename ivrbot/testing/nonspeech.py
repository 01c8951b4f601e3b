"""A corpus of audio that is not an answer, made in code: music, tones, babble, line noise.

A listening turn must return no choice for any of it (see ``bench/false_accepts.py`` and
``tests/speech/test_nonspeech.py``). Every clip is 16 kHz mono int16: ``lead_s`` of quiet
line (-70 dBFS noise), the sound, then ``tail_s`` of quiet line, so the sound starts in the
middle of a turn, as when a caller's line starts playing music or tones while the bot
listens. Levels are RMS dBFS of the sound.

* music: melodies of notes with harmonics and soft envelopes, chords, a bass line, drums,
  vibrato, and the gateway's own music on hold (:func:`ivrbot.media.tones.hold_music`);
* tones: single and dual tones, ringback (440+480 Hz, 2 s on), busy (480+620 Hz, 0.5 s
  on/off), Chromium's fake microphone (20 ms of a 400 Hz unipolar square wave every 0.5 s,
  as captured from Chromium 156; at full scale with ``natural=True``), longer pulses, a
  1 kHz beep each second, the special-information tone;
* babble: two to four espeak-ng voices in different languages talking over each other
  (English, German, French, Spanish, Russian, Chinese, Japanese, and Korean sentences
  with none of the usual choice words);
* noise: white, pink and brown noise, 50/60 Hz hum with harmonics, crackle.
"""

from __future__ import annotations

import io
import subprocess
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np

from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.tones import hold_music
from ivrbot.testing.audio import resample_pcm

RATE = 16000
LEVELS_DBFS = (-35.0, -25.0, -15.0)

__all__ = ["KINDS", "LEVELS_DBFS", "RATE", "Clip", "clip", "corpus", "espeak"]


@dataclass(frozen=True)
class Clip:
    kind: str  # music, tones, babble or noise
    name: str  # what it is and its level, e.g. "chords -25dBFS"
    pcm: np.ndarray  # 16 kHz mono int16


Sound = Callable[[float, np.random.Generator], np.ndarray]  # (seconds, rng) -> float wave


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _note(freq: float, seconds: float, harmonics: int = 6, vibrato: float = 0.0) -> np.ndarray:
    """A note with ``harmonics`` partials falling off as 1/k, attack and release."""
    t = _t(seconds)
    phase = 2 * np.pi * freq * t
    if vibrato:
        phase += vibrato * np.sin(2 * np.pi * 5.5 * t)
    wave_ = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1) if k * freq < RATE / 2)
    n = t.size
    ramp = np.minimum(1.0, np.minimum(np.arange(n), n - np.arange(n)) / (0.02 * RATE))
    decay = np.exp(-t / max(seconds, 0.3))
    return np.asarray(wave_) * ramp * (0.6 + 0.4 * decay)


def _midi(m: float) -> float:
    return float(440.0 * 2 ** ((m - 69) / 12))


def _sequence(notes: Iterable[tuple[list[float], float]], **note_args: float) -> np.ndarray:
    parts = []
    for pitches, seconds in notes:
        if not pitches:
            parts.append(np.zeros(int(seconds * RATE)))
            continue
        voices = [_note(_midi(p), seconds, **note_args) for p in pitches]  # type: ignore[arg-type]
        parts.append(np.mean(voices, axis=0))
    return np.concatenate(parts)


def _loop_to(wave_: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    return np.resize(wave_, n) if wave_.size else np.zeros(n)


def _melody(seconds: float, rng: np.random.Generator) -> np.ndarray:
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    notes = [([float(rng.choice(scale))], float(rng.choice([0.2, 0.3, 0.4]))) for _ in range(24)]
    return _loop_to(_sequence(notes), seconds)


def _fast_melody(seconds: float, rng: np.random.Generator) -> np.ndarray:
    scale = [67, 69, 71, 72, 74, 76, 79]
    notes = [([float(rng.choice(scale))], 0.12) for _ in range(40)]
    return _loop_to(_sequence(notes, harmonics=3), seconds)


def _chords(seconds: float, rng: np.random.Generator) -> np.ndarray:
    progression = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62]]
    return _loop_to(_sequence([([float(p) for p in c], 0.8) for c in progression]), seconds)


def _melody_over_chords(seconds: float, rng: np.random.Generator) -> np.ndarray:
    chords = _chords(seconds, rng)
    melody = _loop_to(_sequence([([float(rng.choice([72, 74, 76, 79]))], 0.4) for _ in range(12)],
                                vibrato=0.004), seconds)  # fmt: skip
    bass = _loop_to(_sequence([([float(p)], 0.8) for p in (36, 33, 29, 31)], harmonics=3), seconds)
    return 0.5 * chords + 0.35 * melody + 0.4 * bass


def _drums(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Kick, hi-hat and snare at 120 bpm under a chord progression: pop hold music."""
    n = int(seconds * RATE)
    out = 0.5 * _chords(seconds, rng)
    beat = int(0.25 * RATE)
    t = _t(0.15)
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 30)) * t) * np.exp(-t * 25)
    hat = rng.normal(0, 0.3, int(0.04 * RATE)) * np.exp(-_t(0.04) * 80)
    snare = rng.normal(0, 0.5, int(0.12 * RATE)) * np.exp(-_t(0.12) * 30)
    for i, start in enumerate(range(0, n, beat)):
        for hit, every in ((kick, 4), (snare, 4), (hat, 1)):
            if every == 4 and (i % 4) != (0 if hit is kick else 2):
                continue
            end = min(n, start + hit.size)
            out[start:end] += hit[: end - start]
    return out


def _hold_music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return _loop_to(resample_pcm(hold_music(), WIRE_RATE, RATE).astype(np.float64), seconds)


def _tone(*freqs: float) -> Sound:
    return lambda seconds, rng: sum(np.sin(2 * np.pi * f * _t(seconds)) for f in freqs)  # type: ignore[return-value]


def _cadence(sound: Sound, on_s: float, off_s: float) -> Sound:
    def make(seconds: float, rng: np.random.Generator) -> np.ndarray:
        wave_ = sound(seconds, rng)
        t = _t(seconds)
        return np.asarray(wave_ * ((t % (on_s + off_s)) < on_s))

    return make


def _pulses(freq: float, on_s: float, every_s: float) -> Sound:
    """A unipolar square wave (0 and +1) at ``freq``, ``on_s`` long, every ``every_s``: what
    Chromium's fake microphone (--use-fake-device-for-media-stream) gives, measured in
    Chromium 156 through getUserMedia: 20 ms of 400 Hz every 0.5 s, peaks at full scale."""

    def make(seconds: float, rng: np.random.Generator) -> np.ndarray:
        t = _t(seconds)
        square = (np.sin(2 * np.pi * freq * t) >= 0).astype(np.float64)
        return np.asarray(square * ((t % every_s) < on_s))

    return make


def _sit(seconds: float, rng: np.random.Generator) -> np.ndarray:
    parts = [np.sin(2 * np.pi * f * _t(0.33)) for f in (913.8, 1370.6, 1776.7)]
    return _loop_to(np.concatenate([*parts, np.zeros(RATE)]), seconds)


def _coloured(exponent: float) -> Sound:
    def make(seconds: float, rng: np.random.Generator) -> np.ndarray:
        n = int(seconds * RATE)
        spectrum = np.fft.rfft(rng.normal(0, 1, n))
        f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 20.0)
        return np.fft.irfft(spectrum / f ** (exponent / 2), n)

    return make


def _hum(mains: float) -> Sound:
    def make(seconds: float, rng: np.random.Generator) -> np.ndarray:
        t = _t(seconds)
        return sum(np.sin(2 * np.pi * mains * k * t) / k for k in (1, 2, 3, 5, 7))  # type: ignore[return-value]

    return make


def _crackle(seconds: float, rng: np.random.Generator) -> np.ndarray:
    n = int(seconds * RATE)
    out = rng.normal(0, 0.05, n)
    clicks = rng.integers(0, n - 80, int(seconds * 12))
    shape = np.exp(-np.arange(80) / 10.0)
    for start in clicks:
        out[start : start + 80] += rng.choice([-1, 1]) * rng.uniform(0.5, 1.0) * shape
    return out


BABBLE_TEXTS = {
    "en-us": "The quarterly report is due on Friday, so please send your figures to Anna.",
    "de": "Wir treffen uns morgen um neun Uhr vor dem Bahnhof, bring bitte die Karten mit.",
    "fr": "Le train pour Lyon part du quai numéro sept dans un quart d'heure environ.",
    "es": "Mi hermana vive en una casa pequeña cerca del mar con tres gatos negros.",
    "ru": "Сегодня вечером мы пойдём в театр, а завтра поедем на дачу к бабушке.",
    "cmn": "今天天气很好，我们去公园散步吧，然后一起吃午饭。",
    "ja": "明日は朝早く起きて、駅前の喫茶店でコーヒーを飲みます。",
    "ko": "오늘 날씨가 정말 좋아서 친구들과 공원에서 산책을 했습니다.",
    "ko+f2": "저는 지난 주말에 부산에 가서 바다를 보고 맛있는 생선을 먹었어요.",
}
BABBLE_MIXES: tuple[tuple[str, ...], ...] = (
    ("en-us", "de"),
    ("fr", "es", "ru"),
    ("cmn", "ja", "en-us", "de"),
    ("ko", "ko+f2"),
    ("ko", "en-us", "cmn"),
)


@cache
def espeak(voice: str, text: str, words_per_minute: int = 170) -> np.ndarray:
    """``text`` spoken by espeak-ng's ``voice`` (16 kHz mono int16, float64 read-only)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), np.int16)
    return resample_pcm(pcm, rate, RATE)


def _babble(voices: tuple[str, ...]) -> Sound:
    def make(seconds: float, rng: np.random.Generator) -> np.ndarray:
        n = int(seconds * RATE)
        out = np.zeros(n)
        for i, voice in enumerate(voices):
            speech = espeak(voice, BABBLE_TEXTS[voice], 150 + 20 * i).astype(np.float64)
            speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-9)
            offset = int(rng.uniform(0, 0.4) * RATE)
            end = min(n, offset + speech.size)
            out[offset:end] += speech[: end - offset]
        return out

    return make


SOUNDS: dict[str, dict[str, Sound]] = {
    "music": {
        "melody": _melody,
        "fast melody": _fast_melody,
        "chords": _chords,
        "melody, chords, bass": _melody_over_chords,
        "chords and drums": _drums,
        "gateway hold music": _hold_music,
    },
    "tones": {
        "1 kHz tone": _tone(1000.0),
        "dial tone 350+440": _tone(350.0, 440.0),
        "ringback 440+480": _cadence(_tone(440.0, 480.0), 2.0, 4.0),
        "busy 480+620": _cadence(_tone(480.0, 620.0), 0.5, 0.5),
        "chromium fake microphone": _pulses(400.0, 0.02, 0.5),
        "400 Hz pulses 60 ms 1/s": _pulses(400.0, 0.06, 1.0),
        "1 kHz beep 1/s": _cadence(_tone(1000.0), 0.1, 0.9),
        "special information tone": _sit,
    },
    "babble": {"+".join(mix): _babble(mix) for mix in BABBLE_MIXES},
    "noise": {
        "white noise": _coloured(0.0),
        "pink noise": _coloured(1.0),
        "brown noise": _coloured(2.0),
        "50 Hz hum": _hum(50.0),
        "60 Hz hum": _hum(60.0),
        "crackle": _crackle,
    },
}
KINDS = tuple(SOUNDS)


def _at_level(wave_: np.ndarray, dbfs: float) -> np.ndarray:
    """Scale ``wave_`` so its loud part (frames above -30 dB of its peak) is at ``dbfs`` RMS."""
    frames = wave_[: wave_.size // 160 * 160].reshape(-1, 160)
    power = np.mean(frames**2, axis=1)
    loud = power[power > power.max() * 1e-3] if power.max() > 0 else power
    rms = float(np.sqrt(np.mean(loud))) or 1.0
    return np.asarray(wave_ / rms * 32768 * 10 ** (dbfs / 20))


def clip(
    kind: str,
    name: str,
    dbfs: float | None,
    seconds: float = 3.0,
    lead_s: float = 0.5,
    tail_s: float = 1.0,
    seed: int = 1,
) -> Clip:
    """One clip: ``SOUNDS[kind][name]`` at ``dbfs`` (None: as made, 1.0 is full scale) for
    ``seconds`` between quiet line."""
    rng = np.random.default_rng(seed)
    wave_ = SOUNDS[kind][name](seconds, rng)
    sound = wave_ * 32767 if dbfs is None else _at_level(wave_, dbfs)
    quiet = rng.normal(0, 32768 * 10 ** (-70 / 20), int((lead_s + seconds + tail_s) * RATE))
    lead = int(lead_s * RATE)
    quiet[lead : lead + sound.size] += sound
    pcm = np.clip(np.round(quiet), -32768, 32767).astype(np.int16)
    return Clip(kind, f"{name} {'full scale' if dbfs is None else f'{dbfs:.0f}dBFS'}", pcm)


NATURAL = (("tones", "chromium fake microphone"),)  # also in the corpus as made


def corpus(
    kinds: Iterable[str] = KINDS,
    levels: Iterable[float] = LEVELS_DBFS,
    seconds: float = 3.0,
    names: Iterable[str] | None = None,
) -> list[Clip]:
    """Every sound of ``kinds`` at every level (only those in ``names``, when given), and
    the sounds of ``NATURAL`` at their own level."""
    wanted = set(names) if names is not None else None
    kinds = tuple(kinds)
    levels_: list[float | None] = [*levels]
    return [
        clip(kind, name, level, seconds)
        for kind in kinds
        for name in SOUNDS[kind]
        if wanted is None or name in wanted
        for level in levels_ + ([None] if (kind, name) in NATURAL else [])
    ]
