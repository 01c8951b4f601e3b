"""The recorded sequences of the real gateway (tests/contract/sequences/) replayed to the
Python Phone on a scripted transport (no gateway, in-process media): it sends the recorded
requests and ends as the Phone on the real gateway did (its calls' states, the Phone-API
events it published, in order). test_replay_phone_js.py holds phone.js to the same."""

from __future__ import annotations

import pytest

from tests.contract.recording import load, names
from tests.contract.replay import replay

pytestmark = pytest.mark.unit

SESSIONS = [(n, s) for n in names() for s in load(n)["sessions"]]


@pytest.mark.parametrize(("scenario", "session"), SESSIONS, ids=[f"{n}-{s}" for n, s in SESSIONS])
async def test_the_python_phone_replays_the_recording(scenario: str, session: str) -> None:
    recorded = load(scenario)["sessions"][session]
    assert await replay(recorded["wire"], session) == recorded["expect"]
