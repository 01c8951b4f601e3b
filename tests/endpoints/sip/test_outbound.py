"""A flow dials out through a SIP trunk to a phone (baresip): the phone rings, answers and
hears the flow; a phone that turns the call down gives the call record the outcome 'busy'."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ivrbot.endpoints.sip.settings import Trunk
from ivrbot.flow import Flow, Hangup, Say
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.conftest import MakeSip
from tests.endpoints.sip.peers import Baresip

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker
CALLEE = "5550002000"  # not a number of this gateway: the trunk dials it


def notice() -> Flow:
    flow = Flow("notice", number="5550001005", detect_machine=False)
    flow.add(
        Say("hello", "Hello. This is a notice from ivrbot.", next="bye"),
        Hangup("bye", "Goodbye."),
    )
    return flow


@pytest.fixture
async def dialler(gateway: GatewayServer, tts: Synthesizer) -> AsyncIterator[Bot]:
    bot = Bot(notice(), gateway.url, tts, None, gateway=gateway.gateway, inbound=False)
    await bot.start()
    yield bot
    await bot.stop()


def trunk_to(phone: Baresip) -> dict[str, Trunk]:
    uri = f"sip:127.0.0.1:{phone.sip_port}"
    return {"pbx": Trunk("pbx", uri=uri, caller_id="5550001005", prefixes=("555000",))}


async def test_a_flow_dials_a_sip_phone_which_hears_it(
    dialler: Bot,
    make_sip: MakeSip,
    phone: Baresip,
) -> None:
    await make_sip(trunk_to(phone))
    await phone.start(f"<sip:{CALLEE}@127.0.0.1:{phone.sip_port}>;regint=0;answermode=auto")
    flow_call = await dialler.dial(CALLEE)
    record = await dialler.finished_call(flow_call, timeout_s=30)
    await phone.wait_for_log("audio: destroyed")  # the flow hung up: the recording is closed

    assert record.path == ["hello", "bye"]
    assert "from sip:5550001005@" in await phone.wait_for_log("answering call")  # caller id
    speech_s = phone.speech_s()
    assert speech_s > 1.5, f"the SIP phone heard {speech_s:.1f} s of speech"


async def test_a_sip_phone_that_declines_makes_the_call_busy(
    dialler: Bot,
    make_sip: MakeSip,
    phone: Baresip,
    gateway: GatewayServer,
) -> None:
    await make_sip(trunk_to(phone))
    await phone.start(f"<sip:{CALLEE}@127.0.0.1:{phone.sip_port}>;regint=0;answermode=manual")
    flow_call = await dialler.dial(CALLEE)
    await phone.wait_for_log("Incoming call from")
    await phone.command("hangup")  # baresip turns a ringing call down with 486
    await dialler.finished_call(flow_call, timeout_s=30)
    async with asyncio.timeout(5):
        while not (calls := await gateway.gateway.store.recent_calls()) or not calls[0].ended_at:
            await asyncio.sleep(0.05)
    assert calls[0].outcome == "busy"
