"""The wire API's event sequences (docs/spec/rtc-api.md, phone-api.md), recorded from the real
gateway: each scenario of tests/contract/scenarios.py is played by Phones in the gateway's
process (its routes without a socket, in-process media: no peer, no audio) and what each session did and received must be what
tests/contract/sequences/<scenario>.json says. The same files are replayed against the Python
Phone (test_replay_python.py) and phone.js (test_replay_phone_js.py), so they stay true.

After a deliberate change of the wire API, ``RECORD_SEQUENCES=1 pytest tests/contract`` writes
them again (then read the diff)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.contract.recording import load, names, save, streams
from tests.contract.scenarios import SCENARIOS, record
from tests.wire.wire import running

pytestmark = pytest.mark.contract


def test_every_scenario_has_its_recording() -> None:
    assert names() == sorted(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_gateway_says_what_was_recorded(name: str, tmp_path: Path) -> None:
    async with running(tmp_path / "gateway.db") as (server, _):
        assert server.gateway.in_process is not None
        recorded = await record(server.gateway.in_process, name)
    if os.environ.get("RECORD_SEQUENCES") == "1":
        save(name, recorded)
    assert streams(recorded) == streams(load(name))
