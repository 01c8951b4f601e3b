"""A gateway whose virtual-number pool holds the contact numbers, the reminder flow's bot
inside it, and simulated callees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.wire.server import GatewayServer

ROOT = Path(__file__).resolve().parents[2]
CONTACT_NUMBERS = [f"{area}55501{i:02d}" for area in (212, 312, 310) for i in range(1, 40)]


@pytest.fixture
async def campaign_parts(tmp_path: Path, tts: Synthesizer) -> AsyncIterator[Parts]:
    pool = ["5550001013", *CONTACT_NUMBERS]
    settings = Settings(port=0, db=str(tmp_path / "gw.db"), virtual_numbers=pool,
                        flow_max_calls=10)  # fmt: skip
    async with assemble(settings, tts=tts) as parts:
        yield parts


@pytest.fixture
async def campaign_gateway(campaign_parts: Parts) -> GatewayServer:
    assert campaign_parts.server is not None
    return campaign_parts.server


@pytest.fixture
async def reminder_bot(campaign_parts: Parts) -> Bot:
    """The reminder flow's bot inside the gateway (as ivrbot run serves it)."""
    return await campaign_parts.serve(load_flow_file(ROOT / "flows" / "reminder.py"), inbound=False)
