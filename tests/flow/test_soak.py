"""Soak: 200 calls in a row through a real gateway and a real bot leave nothing behind.

Real gateway on 127.0.0.1, real aiortc peers (caller, two gateway legs, bot), real
espeak-ng prompts, the real vosk model (one grammar turn per call), keys as RFC 4733.
After a warm-up of 20 calls (caches, allocator arenas, executor threads settle), every
measure is taken after a garbage collection, once the call is over: resident memory may
grow by less than 0.1 MB per call, and threads, descriptors, tasks and peer connections
stay within a small fixed slack of what they were after the warm-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import vosk

from ivrbot.endpoints.webrtc import rfc4733
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.soak import Sample, per_call, soak

pytestmark = pytest.mark.e2e

CALLS = 200
WARM_UP = 20
EVERY = 20
SLACK = 2  # threads, descriptors, tasks: a fixed allowance (executor threads start lazily)


async def test_200_calls_leave_no_per_call_growth(
    tts: Synthesizer, model: vosk.Model, tmp_path: Path
) -> None:
    receivers_before = rfc4733.tracked()[0]
    samples: list[Sample] = []
    async for s in soak(CALLS, EVERY, tts, model, db=str(tmp_path / "gateway.db")):
        samples.append(s)
    table = "\n".join(str(s) for s in samples)

    last = samples[-1]
    assert last.calls == CALLS
    assert last.keys_taken == CALLS, f"the bot did not take every key:\n{table}"
    assert last.elapsed_s < 600, table

    growth = per_call(samples, WARM_UP)
    assert growth["rss_mb"] < 0.1, f"{growth['rss_mb']:.3f} MB per call:\n{table}"
    base = next(s for s in samples if s.calls >= WARM_UP)
    after = [s for s in samples if s.calls >= WARM_UP]
    assert max(s.threads for s in after) <= base.threads + SLACK, table
    assert max(s.fds for s in after) <= base.fds + SLACK, table
    assert max(s.tasks for s in after) <= base.tasks + SLACK, table
    # Between calls nothing of a call is alive: no peer connection survives a collection
    # (beyond any an earlier test in this process left before the soak began).
    assert all(s.peers == samples[0].peers for s in samples), table
    # Every receiver's telephone-event state was released with its peer connection.
    assert rfc4733.tracked()[0] == receivers_before
