"""False accepts of the grammar turns: music, tones, babble and line noise taken for a choice.

Feeds the corpus of :mod:`ivrbot.testing.nonspeech` (made in code: every sound at three
levels, directly and through Opus) to grammar turns with the grammars of the example flows
(``flows/``), one turn after another as a call would (a turn that ends with no choice is
followed by the next one on the rest of the clip), before (no speechness check, any match
accepted) and after (the turn's speechness check and the grammar's acceptance rules).
Babble also in 1 s bursts (a few words of other people's talk), a row of its own. Then the spoken choices (espeak-ng Korean at 150/200/250 words a minute, directly and
through Opus with a -55 dBFS noise floor) with the same turns. Prints one table.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/false_accepts.py [--levels -25] [--no-opus] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # FACTS: BLAS threads fight over cores

import numpy as np
import vosk

from ivrbot.flow.loader import load_flows
from ivrbot.flow.steps import Ask
from ivrbot.speech.speech_model import shared_model
from ivrbot.speech.speechness import SpeechnessMeter
from ivrbot.speech.tts import Synthesizer
from ivrbot.speech.turns import GrammarTurn
from ivrbot.testing.audio import opus_round_trip, resample_pcm
from ivrbot.testing.nonspeech import KINDS, LEVELS_DBFS, RATE, Clip, corpus

CHUNK = RATE // 50  # 20 ms, one packet
SPOKEN = {"예약": "booking", "메뉴": "menu", "아니요": "no"}  # FACTS: recognised from espeak-ng
WORDS_PER_MINUTE = (150, 200, 250)


@dataclass
class Tally:
    clips: int = 0
    accepted: dict[str, int] = field(default_factory=lambda: {"before": 0, "after": 0})
    nomatch: dict[str, int] = field(default_factory=lambda: {"before": 0, "after": 0})
    cpu_s: dict[str, float] = field(default_factory=lambda: {"before": 0.0, "after": 0.0})
    audio_s: float = 0.0


def grammars(flows_dir: Path) -> dict[str, dict[str, str]]:
    """The distinct grammars of the flows' Asks and Menus, named by flow."""
    found: dict[str, dict[str, str]] = {}
    for flow in load_flows(flows_dir, check_model=False):
        for step in flow.steps.values():
            if isinstance(step, Ask) and step.choice_map and not step.free_form:
                if step.choice_map not in found.values():
                    found[f"{flow.name}:{step.name}"] = dict(step.choice_map)
    return found


def turn(model: vosk.Model, choices: Mapping[str, str], mode: str) -> GrammarTurn:
    """A turn as an Ask makes one (the flows' default 0.15 s / 0.3 s timeouts)."""
    if mode == "before":
        return GrammarTurn(
            model, choices, silence_ms=300, complete_silence_ms=150, no_input_ms=10**9,
            reject_nonspeech=False, max_repeats=None, min_confidence=0.0,
        )  # fmt: skip
    return GrammarTurn(model, choices, silence_ms=300, complete_silence_ms=150, no_input_ms=10**9)


async def answers(
    model: vosk.Model, choices: Mapping[str, str], mode: str, pcm: np.ndarray
) -> tuple[list[tuple[str, str | None]], list[float]]:
    """(outcome, choice) of each turn over ``pcm``, one turn after another, and the
    confidence of each match."""
    out: list[tuple[str, str | None]] = []
    confidences: list[float] = []
    pos = 0
    while pos < len(pcm):
        current = turn(model, choices, mode)
        result = None
        while pos < len(pcm) and result is None:
            result = await current.feed(pcm[pos : pos + CHUNK])
            pos += CHUNK
        if result is None:
            result = await current.finish()
        out.append((result.outcome, result.choice))
        if result.outcome == "match":
            confidences.append(round(result.confidence, 2))
    return out, confidences


async def spoken(synth: Synthesizer, word: str, rate: int, opus_seed: int | None) -> np.ndarray:
    """``word`` between quiet, directly (``opus_seed`` None) or through Opus over a noise
    floor made with ``opus_seed``."""
    prompt = await synth.synth(word, voice="ko", rate=rate)
    voice = resample_pcm(prompt.pcm, prompt.sample_rate, RATE)
    quiet = np.zeros(RATE // 2, np.int16)
    clean = np.concatenate([quiet, voice, quiet, quiet, quiet])
    if opus_seed is None:
        return clean
    floor = np.random.default_rng(opus_seed).normal(0, 32768 * 10 ** (-55 / 20), clean.size)
    return opus_round_trip(np.clip(clean + floor, -32768, 32767).astype(np.int16))


def meter_cpu_ms_per_s(clips: list[Clip]) -> float:
    """CPU of the speechness meter alone (fed every 20 ms, judged every 0.5 s)."""
    meter = SpeechnessMeter(RATE)
    audio = np.concatenate([c.pcm for c in clips])
    start = time.process_time()
    for i in range(0, audio.size, CHUNK):
        meter.feed(audio[i : i + CHUNK])
        if i % (RATE // 2) == 0:
            meter.verdict()
            meter.reset()
    return (time.process_time() - start) * 1000 / (audio.size / RATE)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=Path, default=Path("flows"))
    parser.add_argument("--levels", type=float, nargs="*", default=list(LEVELS_DBFS))
    parser.add_argument("--seconds", type=float, default=3.0, help="sound per clip")
    parser.add_argument("--no-opus", action="store_true", help="only direct clips")
    parser.add_argument(
        "--opus-trials",
        type=int,
        default=3,
        help="each spoken choice through Opus this many times (noise seeds)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="every false accept")
    args = parser.parse_args()

    model = shared_model()
    table = grammars(args.flows)
    clips = corpus(levels=args.levels, seconds=args.seconds)
    bursts = corpus(["babble"], levels=args.levels, seconds=1.0)  # short: a few words
    clips += [Clip("babble 1 s", c.name, c.pcm) for c in bursts]
    variants = [("direct", clips)]
    if not args.no_opus:
        variants.append(("opus", [Clip(c.kind, c.name, opus_round_trip(c.pcm)) for c in clips]))
    tallies = {kind: Tally() for kind in (*KINDS, "babble 1 s")}
    for _, variant in variants:
        for c in variant:
            tally = tallies[c.kind]
            for choices in table.values():
                tally.clips += 1
                tally.audio_s += c.pcm.size / RATE
                for mode in ("before", "after"):
                    t0 = time.process_time()
                    got, confidences = await answers(model, choices, mode, c.pcm)
                    tally.cpu_s[mode] += time.process_time() - t0
                    tally.accepted[mode] += any(o == "match" for o, _ in got)
                    tally.nomatch[mode] += sum(o == "nomatch" for o, _ in got)
                    if args.verbose and mode == "after" and any(o == "match" for o, _ in got):
                        print(f"  false accept: {c.name} ({c.kind}): {got} {confidences}")

    heard = {"before": 0, "after": 0}
    trials = 0
    with tempfile.TemporaryDirectory() as folder:
        synth = Synthesizer(Path(folder))
        try:
            welcome = next(g for g in table.values() if set(SPOKEN) <= set(g))
            for word in SPOKEN:
                for rate in WORDS_PER_MINUTE:
                    for seed in (None, *range(args.opus_trials)):
                        pcm = await spoken(synth, word, rate, seed)
                        trials += 1
                        for mode in heard:
                            got, confidences = await answers(model, welcome, mode, pcm)
                            heard[mode] += got[0] == ("match", welcome[word])
                            if args.verbose and got[0] != ("match", welcome[word]):
                                how = "direct" if seed is None else f"Opus {seed}"
                                print(f"  {mode}: {word} {rate} wpm {how} missed: {got}")
                            elif args.verbose and mode == "after":
                                print(f"  {word} {rate} wpm: confidence {confidences}")
        finally:
            await synth.close()

    print(f"\nGrammars: {', '.join(f'{k} {sorted(v)}' for k, v in table.items())}")
    print(f"Clips: {args.seconds:g} s of sound between quiet line at {args.levels} dBFS, "
          f"{' and '.join(v for v, _ in variants)}; one row counts clip x grammar.\n")  # fmt: skip
    print(f"{'class':<10} | {'clips':>5} | {'false accepts':^15} | {'no-matches':^15} "
          f"| {'turn CPU ms/s':^15}")  # fmt: skip
    print(f"{'':<10} | {'':>5} | {'before':>7} {'after':>7} | {'before':>7} {'after':>7} "
          f"| {'before':>7} {'after':>7}")  # fmt: skip
    print("-" * 76)
    for kind, t in tallies.items():
        cpu = {m: 1000 * t.cpu_s[m] / t.audio_s for m in t.cpu_s}
        print(f"{kind:<10} | {t.clips:>5} | {t.accepted['before']:>7} {t.accepted['after']:>7} "
              f"| {t.nomatch['before']:>7} {t.nomatch['after']:>7} "
              f"| {cpu['before']:>7.1f} {cpu['after']:>7.1f}")  # fmt: skip
    print("-" * 76)
    print(f"spoken choices recognised ({'/'.join(SPOKEN)} x {WORDS_PER_MINUTE} wpm x direct "
          f"and {args.opus_trials} through Opus): before {heard['before']}/{trials}, "
          f"after {heard['after']}/{trials}")  # fmt: skip
    print(f"speechness meter alone: {meter_cpu_ms_per_s(clips):.2f} ms of CPU per second of audio")


if __name__ == "__main__":
    asyncio.run(main())
