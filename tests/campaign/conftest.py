"""A gateway whose virtual-number pool holds the contact numbers, the reminder flow's bot
inside it, and simulated callees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.tts import Synthesizer

ROOT = Path(__file__).resolve().parents[2]
CONTACT_NUMBERS = [f"{area}55501{i:02d}" for area in (212, 312, 310) for i in range(1, 40)]


@pytest.fixture
async def campaign_gateway(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    pool = ["5550001013", *CONTACT_NUMBERS]
    server = GatewayServer(Settings(port=0, db=str(tmp_path / "gw.db"), virtual_numbers=pool))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def reminder_bot(campaign_gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[Bot]:
    flow = load_flow_file(ROOT / "flows" / "reminder.py")
    bot = Bot(flow, campaign_gateway.url, tts, gateway=campaign_gateway.gateway, inbound=False,
              max_calls=10)  # fmt: skip
    await bot.start()
    yield bot
    await bot.stop()
