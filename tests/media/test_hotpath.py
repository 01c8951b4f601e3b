"""The cheaper per-packet path over aiortc: same audio levels, same audio heard."""

from __future__ import annotations

import numpy as np

from ivrbot.media.frames import frame_from_pcm
from ivrbot.media.hotpath import aiortc_audio_level_dbov, audio_level_dbov
from tests.audio_checks import sine


def test_audio_level_matches_aiortc() -> None:
    rng = np.random.default_rng(7)
    cases = [np.zeros(960, np.int16), np.full(960, 32767, np.int16), sine(1000, 0.02)]
    cases += [(rng.standard_normal(960) * scale).astype(np.int16) for scale in (1, 30, 3000)]
    for pcm in cases:
        frame = frame_from_pcm(pcm.astype(np.int16), 0)
        assert audio_level_dbov(frame) == aiortc_audio_level_dbov(frame)
