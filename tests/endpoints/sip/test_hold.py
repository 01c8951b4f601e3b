"""A SIP phone holds a bot while it listens (re-INVITE ``a=sendonly``: the gateway holds the
caller's leg): the bot hears silence, takes no answer from the hold, and its Ask's no-input
timer waits for the resume."""

from __future__ import annotations

import asyncio
import time

import pytest
import vosk

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.flow import Ask, Flow, Hangup, Retry
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SILENCE_DB
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.peers import Baresip
from tests.endpoints.sip.test_inbound import prompt_done
from tests.flow.test_hold import CHOICES, BotEar, bot_ear  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker


async def test_a_sip_phone_holds_a_listening_bot(
    gateway: GatewayServer,
    tts: Synthesizer,
    model: vosk.Model,
    sip_local: SipConnector,
    phone: Baresip,
    bot_ear: BotEar,  # noqa: F811
) -> None:
    flow = Flow("sipheld", number="5550001079", language="ko")
    flow.add(
        Ask("q", "Press a key.", choices=CHOICES, timeout_s=3.0, retry=Retry(attempts=1),
            next="got", no_input="bye", no_match="bye"),
        Hangup("got", "Thank you."),
        Hangup("bye", "Goodbye."),
    )  # fmt: skip
    bot = Bot(flow, gateway.url, tts, model, gateway=gateway.gateway)
    await bot.start()
    try:
        await phone.start()
        await phone.command("dial", f"sip:5550001079@127.0.0.1:{sip_local.port}")
        await prompt_done(bot, 1)
        await phone.command("hold")  # re-INVITE a=sendonly
        await phone.wait_for_log("hold")
        held_at = time.monotonic()
        await asyncio.sleep(4.0)
        await phone.command("resume")
        resumed_at = time.monotonic()
        await asyncio.sleep(1.0)
        await phone.command("sndcode", "5")  # RFC 4733
        records = await bot.wait_records(1, timeout_s=20)
    finally:
        await bot.stop()
    record = records[0]
    assert record.path == ["q", "got"], record.path
    assert [(i["outcome"], i["value"]) for i in record.inputs] == [("dtmf", "5")]
    heard = bot_ear.between(held_at + 0.5, resumed_at - 0.1)
    assert len(heard) > 100 and max(heard) < SILENCE_DB
