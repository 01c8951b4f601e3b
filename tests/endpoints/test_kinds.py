"""The endpoint kinds a gateway makes from its own settings: two gateways in one process
(or one beside a test) share nothing by accident."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrbot.config import Settings
from ivrbot.core.sessions import Session
from ivrbot.endpoints.webrtc import hotpath
from ivrbot.endpoints.webrtc.leg import Leg
from ivrbot.wire.gateway import Gateway

pytestmark = pytest.mark.unit

REMOTE = Session("s1", "caller@ivrbot.local", "digest", expires_at=0.0)  # not in this process


async def test_each_gateway_gives_its_legs_its_own_receive_buffer(tmp_path: Path) -> None:
    held = Gateway(Settings(db=str(tmp_path / "a.db"), jitter_prefetch=4))
    default = Gateway(Settings(db=str(tmp_path / "b.db")))
    legs = []
    try:
        for gateway in (held, default):
            leg = gateway.endpoints.for_session("caller", REMOTE)
            assert isinstance(leg, Leg)
            legs.append(leg)
        assert [leg._prefetch for leg in legs] == [4, 1]
        assert hotpath.GATEWAY_PREFETCH == 1  # neither changed the process's default
    finally:
        for leg in legs:
            await leg.close()
        await held.close()
        await default.close()
