"""Talk-off: ten minutes and more of speech, and music-like audio, give no DTMF digit.

The speech is espeak-ng in several languages, voices, pitches and speaking rates, written
to WAV files by the espeak-ng binary (about 650x real time, so the corpus costs a second or
two); the music is synthetic chords and melodies with harmonics, vibrato and percussion.
Both are fed to :class:`DtmfDetector` the way a call feeds it (20 ms chunks) at 16 kHz (what
the listener uses) and 8 kHz (G.711), at their level and 10 dB louder.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ivrbot.media.dtmf import DtmfDetector, tones
from ivrbot.testing.audio import resample_pcm as resample

pytestmark = pytest.mark.e2e

Pcm = npt.NDArray[np.int16]
ESPEAK_RATE = 22050
MIN_SPEECH_S = 600.0

TEXTS = {
    "en": (
        "Thank you for calling customer service. Your call is important to us. Please "
        "listen carefully, as our menu options have recently changed. For billing questions, "
        "say billing or press one. To check the status of an order, say orders. If you know "
        "your party's extension, you may dial it at any time. Oh, and did you know that you "
        "can manage your account online, twenty-four hours a day, seven days a week? Hmm, "
        "well, la la la, do re mi fa so la ti do, ooh aah eee, mmm."
    ),
    "ko": (
        "안녕하세요, 고객 센터에 전화해 주셔서 감사합니다. 예약을 원하시면 예약이라고 "
        "말씀해 주세요. 메뉴를 다시 들으시려면 메뉴라고 말씀해 주세요. 상담원과 통화를 "
        "원하시면 잠시만 기다려 주십시오. 아니요, 괜찮습니다. 오늘 날씨가 정말 좋네요. "
        "내일 오후 세 시 삼십 분에 약속이 있습니다. 감사합니다, 좋은 하루 보내세요."
    ),
    "de": (
        "Vielen Dank für Ihren Anruf. Bitte hören Sie genau zu, denn unsere Menüoptionen "
        "haben sich geändert. Für Fragen zu Ihrer Rechnung drücken Sie die Eins. Möchten Sie "
        "einen Termin vereinbaren, sagen Sie bitte Termin. Ach so, übrigens, unser Büro ist "
        "montags bis freitags von acht bis achtzehn Uhr geöffnet. Auf Wiederhören."
    ),
    "fr": (
        "Merci de votre appel. Veuillez écouter attentivement, car nos options ont changé. "
        "Pour toute question concernant votre facture, dites facture. Pour prendre "
        "rendez-vous, restez en ligne, un conseiller va vous répondre. Oui, bien sûr, "
        "aujourd'hui il fait beau à Paris, et demain il pleuvra peut-être. Au revoir."
    ),
    "es": (
        "Gracias por llamar. Por favor, escuche con atención, porque nuestras opciones han "
        "cambiado. Para consultas sobre su factura, diga factura. Para hablar con un agente, "
        "permanezca en la línea. Sí, claro, mañana por la tarde a las tres y media tenemos "
        "una cita. ¡Qué bueno! Muchas gracias y hasta luego."
    ),
    "it": (
        "Grazie per aver chiamato. Ascolti attentamente, perché le nostre opzioni sono "
        "cambiate. Per informazioni sulla bolletta, dica bolletta. Per parlare con un "
        "operatore, resti in linea. Certo, domani pomeriggio alle quattro va benissimo. "
        "Arrivederci e buona giornata."
    ),
}
# (espeak voice[+variant], words per minute, pitch 0-99): each reads its language's text.
VOICES = [
    ("en", 175, 50),
    ("en-us", 130, 30),
    ("en-us+f3", 220, 70),
    ("en-gb+f5", 260, 99),
    ("en+m3", 150, 10),
    ("en+whisper", 175, 50),
    ("en+f4", 110, 60),
    ("en-us+m7", 200, 40),
    ("en-us+f2", 160, 55),
    ("ko", 150, 50),
    ("ko+f2", 200, 80),
    ("ko+m1", 120, 20),
    ("ko+f5", 175, 65),
    ("ko", 230, 45),
    ("de", 170, 40),
    ("de+f4", 240, 85),
    ("de+m2", 130, 25),
    ("fr", 160, 55),
    ("fr+f1", 210, 75),
    ("fr+m4", 120, 30),
    ("es", 180, 45),
    ("es+f3", 140, 90),
    ("es+m1", 230, 60),
    ("it+m2", 190, 35),
    ("it+f2", 130, 70),
    ("it", 160, 50),
]


def louder(pcm: Pcm, db: float) -> Pcm:
    return np.clip(pcm.astype(np.float64) * 10 ** (db / 20), -32768, 32767).astype(np.int16)


def detect(pcm: Pcm, rate: int) -> list[tuple[float, str]]:
    """Digits found in ``pcm`` fed in 20 ms chunks, with the time (s) each was reported."""
    detector = DtmfDetector(rate)
    step = rate // 50
    return [
        (i / rate, digit)
        for i in range(0, pcm.size, step)
        for digit in detector.feed(pcm[i : i + step])
    ]


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, Pcm]]:
    """Over ten minutes of espeak-ng speech (22050 Hz), one clip per voice and text."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder: Path = tmp_path_factory.mktemp("talkoff")
    jobs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    for i, (voice, wpm, pitch) in enumerate(VOICES):
        text = TEXTS[voice.split("+")[0].split("-")[0]]
        path = folder / f"{i}.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(path)]
        jobs.append((f"{voice} {wpm} wpm pitch {pitch}", path, subprocess.Popen([*command, text])))
    clips: list[tuple[str, Pcm]] = []
    for label, path, job in jobs:
        assert job.wait(30) == 0, label
        with wave.open(str(path)) as w:
            assert w.getframerate() == ESPEAK_RATE
            clips.append((label, np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)))
    total = sum(c.size for _, c in clips) / ESPEAK_RATE
    assert total >= MIN_SPEECH_S, f"only {total:.0f} s of speech"
    return clips


def corpus(clips: list[tuple[str, Pcm]], rate: int) -> tuple[Pcm, list[tuple[float, str]]]:
    """All clips at ``rate`` with 0.2 s gaps, twice (level as made, then 10 dB louder)."""
    gap = np.zeros(rate // 5, dtype=np.int16)
    parts: list[Pcm] = []
    starts: list[tuple[float, str]] = []
    at = 0
    for db in (0.0, 10.0):
        for label, clip in clips:
            pcm = louder(resample(clip, ESPEAK_RATE, rate), db)
            starts.append((at / rate, f"{label} +{db:g} dB"))
            parts += [pcm, gap]
            at += pcm.size + gap.size
    return np.concatenate(parts), starts


def where(t: float, starts: list[tuple[float, str]]) -> str:
    label = [name for start, name in starts if start <= t][-1]
    return f"{label} at {t:.2f} s"


@pytest.mark.parametrize("rate", [16000, 8000])
def test_no_digits_in_ten_minutes_of_speech(speech: list[tuple[str, Pcm]], rate: int) -> None:
    pcm, starts = corpus(speech, rate)
    assert pcm.size / rate >= 2 * MIN_SPEECH_S
    found = detect(pcm, rate)
    assert found == [], [f"{d} in {where(t, starts)}" for t, d in found]
    # The detector still works on that audio: digits right after speech are all found.
    tail = np.concatenate([pcm[-5 * rate :], tones("159#", rate, 60, 60)])
    assert [d for _, d in detect(tail, rate)] == list("159#")


def music(rate: int, seconds: float, seed: int) -> Pcm:
    """Chords and melodies of harmonic tones (vibrato, decay) with some percussion."""
    rng = np.random.default_rng(seed)
    out: list[npt.NDArray[np.float64]] = []
    total = 0
    while total < seconds * rate:
        n = int(rate * rng.uniform(0.08, 0.6))
        t = np.arange(n) / rate
        note = np.zeros(n)
        voices = int(rng.integers(1, 5))
        for _ in range(voices):
            f0 = 220.0 * 2 ** (int(rng.integers(-12, 26)) / 12)
            vibrato = 1 + rng.uniform(0, 0.01) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
            phase = 2 * np.pi * np.cumsum(f0 * vibrato) / rate
            rolloff = rng.uniform(0.3, 0.8)
            for h in range(1, 8):
                if f0 * h < rate / 2:
                    note += rolloff**h * np.sin(h * phase + rng.uniform(0, 6))
        envelope = np.minimum(1.0, t / 0.01) * np.exp(-t * rng.uniform(0.5, 8))
        note *= envelope
        if rng.random() < 0.3:  # a drum hit: decaying noise
            note += rng.normal(0, 0.5, n) * np.exp(-t * 40)
        out.append(note)
        total += n
    audio = np.concatenate(out)
    return (audio / np.abs(audio).max() * 16000).astype(np.int16)


@pytest.mark.parametrize("rate", [16000, 8000])
def test_no_digits_in_music_like_audio(rate: int) -> None:
    pcm = np.concatenate([music(rate, 60.0, seed) for seed in (1, 2)])
    for db in (0.0, 6.0):
        found = detect(louder(pcm, db), rate)
        assert found == [], [f"{d} at {t:.2f} s (+{db:g} dB)" for t, d in found]
