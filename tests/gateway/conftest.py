"""Fixtures of the gateway tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from ivrbot.gateway.server import GatewayServer
from tests.gateway.wire import running


@pytest.fixture
async def gwc(tmp_path: Path) -> AsyncIterator[tuple[GatewayServer, aiohttp.ClientSession]]:
    async with running(tmp_path / "gateway.db") as pair:
        yield pair
