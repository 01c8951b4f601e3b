"""Shared fixtures: a real gateway on 127.0.0.1, real TTS, the real vosk model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import vosk

from ivrbot.config import Settings
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.speech_model import load_model
from ivrbot.media.tts import Synthesizer


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    server = GatewayServer(Settings(port=0, db=str(tmp_path / "gateway.db")))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def tts(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Synthesizer]:
    cache: Path = tmp_path_factory.mktemp("prompts")
    async with Synthesizer(cache) as synth:
        yield synth


@pytest.fixture(scope="session")
async def model() -> vosk.Model:
    return await load_model()
