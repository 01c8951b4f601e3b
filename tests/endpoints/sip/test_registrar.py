"""ivrbot registers to a PBX (kamailio, a Debian package) as extension 201, and a SIP phone
(baresip) calls that extension through kamailio: the flow answers and the phone's keys reach
it. A wrong password is reported (log line, status), and nothing else breaks."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import Account
from ivrbot.flow.runner import Bot
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.conftest import MakeSip
from tests.endpoints.sip.peers import PBX_PASSWORD as PASSWORD
from tests.endpoints.sip.peers import Baresip, Kamailio
from tests.endpoints.sip.test_inbound import prompt_done

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker


def extension(pbx: Kamailio, password: str) -> dict[str, Account]:
    registrar = f"sip:127.0.0.1:{pbx.port}"
    return {"office": Account("office", registrar, "201", password, number="5550001000")}


async def registered(sip: SipConnector, name: str) -> None:
    async with asyncio.timeout(10):
        while sip.registrations[name].code == 0 or sip.registrations[name].code == 401:
            await asyncio.sleep(0.05)


async def metrics(gateway: GatewayServer) -> list[str]:
    """The SIP samples of the gateway's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 200
        return [line for line in (await resp.text()).splitlines() if line.startswith("ivrbot_sip")]


async def test_a_phone_calls_the_registered_extension_through_the_pbx(
    welcome: Bot,
    make_sip: MakeSip,
    pbx: Kamailio,
    phone: Baresip,
    gateway: GatewayServer,
) -> None:
    sip = await make_sip({}, accounts=extension(pbx, PASSWORD))  # no trunk: only the PBX
    await registered(sip, "office")
    await phone.start()
    await phone.command("dial", f"sip:201@127.0.0.1:{pbx.port}")
    await prompt_done(welcome, 1)
    during = await metrics(gateway)  # an operator's scrape while the call is up
    assert 'ivrbot_sip_calls{via="account office"} 1.0' in during, during
    assert 'ivrbot_sip_registered{account="office"} 1.0' in during, during
    await phone.command("sndcode", "4")
    await prompt_done(welcome, 2)  # "You pressed 4."
    await phone.hangup()
    records = await welcome.wait_records(1)

    assert [(i["value"], i["method"]) for i in records[0].inputs][:1] == [("4", "rfc4733")]
    assert sip.status()["registrations"][0]["active"] is True
    async with asyncio.timeout(5):
        while 'ivrbot_sip_calls{via="account office"} 1.0' in await metrics(gateway):
            await asyncio.sleep(0.1)  # the call is gone from /metrics once it ended


async def test_a_wrong_password_is_reported(
    make_sip: MakeSip,
    pbx: Kamailio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"):
        sip = await make_sip({}, accounts=extension(pbx, "not-the-password"))
        async with asyncio.timeout(10):
            while "is not registered" not in caplog.text:
                await asyncio.sleep(0.05)
    assert "SIP account office is not registered: 401" in caplog.text
    status = sip.status()["registrations"][0]
    assert status["active"] is False and status["code"] == 401
