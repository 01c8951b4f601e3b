"""Fixtures of the gateway tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login
from tests.wire.wire import running


@pytest.fixture
async def gwc(tmp_path: Path) -> AsyncIterator[tuple[GatewayServer, aiohttp.ClientSession]]:
    async with running(tmp_path / "gateway.db") as pair:
        yield pair


@pytest.fixture(params=["webrtc", "local"])
async def pair(gateway: GatewayServer, request: pytest.FixtureRequest) -> Any:
    """alice (WebRTC) and a bot: a remote Phone over WebRTC, or a Phone in the gateway's
    process (local media: frames in process)."""
    url = gateway.url
    local = gateway.gateway.in_process if request.param == "local" else None
    alice, bot = Party(url, "alice"), Party(url, "bot", local)
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    yield alice, bot
    await alice.phone.close()
    await bot.phone.close()
