"""Fixtures of the SIP tests: the welcome flow's bot inside a real gateway, and the SIP
connector in front of it (PJSIP on 127.0.0.1, a random free port)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import SipSettings, Trunk
from ivrbot.flow import Flow, Hangup, Say, Transfer
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.peers import Baresip, Kamailio, running_pbx

WELCOME = Path(__file__).resolve().parents[3] / "flows" / "welcome.py"
MEDIA_PORTS = (42000, 42999)
DESK = "5550001011"
MakeSip = Callable[..., Awaitable[SipConnector]]


@pytest.fixture
async def welcome(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[Bot]:
    bot = Bot(load_flow_file(WELCOME), gateway.url, tts, None, gateway=gateway.gateway)
    await bot.start()
    yield bot
    await bot.stop()


@pytest.fixture
async def make_sip(gateway: GatewayServer) -> AsyncIterator[MakeSip]:
    """Start the connector with the given trunks (only one per process: PJSIP is a
    process-wide library)."""
    started: list[SipConnector] = []

    async def make(trunks: dict[str, Trunk], **settings: object) -> SipConnector:
        connector = SipConnector(
            gateway.gateway,
            SipSettings(**{"port": 0, "media_ports": MEDIA_PORTS, "trunks": trunks, **settings}),  # type: ignore[arg-type]
        )
        await connector.start()
        started.append(connector)
        return connector

    yield make
    for connector in started:
        await connector.stop()


@pytest.fixture
async def sip_local(make_sip: MakeSip) -> SipConnector:
    """The connector with one trunk taking INVITEs from 127.0.0.1 (calls route by number)."""
    return await make_sip({"local": Trunk("local", allow=("127.0.0.1",))})


@pytest.fixture
async def phone(tmp_path: Path) -> AsyncIterator[Baresip]:
    phone = Baresip(tmp_path)
    yield phone
    await phone.stop()


@pytest.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Kamailio]:
    """kamailio as the PBX (extension 201, see tests.endpoints.sip.peers.running_pbx)."""
    async with running_pbx(tmp_path) as kamailio:
        yield kamailio


@contextlib.asynccontextmanager
async def desk(gateway: GatewayServer, tts: Synthesizer, target: str) -> AsyncIterator[Bot]:
    """A flow at the desk number that transfers every caller to ``target`` (blind); when
    the transfer fails it says so and hangs up."""
    flow = Flow("desk", number=DESK)
    flow.add(
        Transfer("transfer", target, fallback="sorry"),
        Say("sorry", "Sorry, nobody can take your call.", next="bye"),
        Hangup("bye", "Goodbye."),
    )
    bot = Bot(flow, gateway.url, tts, None, gateway=gateway.gateway)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
