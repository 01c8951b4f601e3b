"""A SIP phone (baresip, a Debian package) calls a flow from an allow-listed trunk address:
it hears the prompts (measured in what baresip decoded) and navigates the menu with RFC 4733
keys (what the bot recorded). Calls from other addresses, or with no common codec, are
turned away with a clear SIP response and a log line."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import Trunk
from ivrbot.flow.call import FlowCall
from ivrbot.flow.runner import Bot
from tests.endpoints.sip.conftest import MakeSip
from tests.endpoints.sip.peers import Baresip

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker


async def prompt_done(bot: Bot, count: int) -> FlowCall:
    """The bot's call once it has played ``count`` prompts to the end."""
    async with asyncio.timeout(20):
        while True:
            calls = [entry[0] for entry in bot.active.values()]
            if calls and len(calls[0].playbacks) >= count and calls[0].playbacks[count - 1].done:
                return calls[0]
            await asyncio.sleep(0.05)


async def test_sip_caller_hears_prompts_and_keys_navigate_the_menu(
    welcome: Bot,
    sip_local: SipConnector,
    phone: Baresip,
) -> None:
    sip = sip_local
    await phone.start()
    await phone.command("dial", f"sip:5550001000@127.0.0.1:{sip.port}")
    await prompt_done(welcome, 1)  # "Welcome to ivrbot. Press a key, or say a word."
    await phone.command("sndcode", "7")  # RFC 4733
    await prompt_done(welcome, 3)  # "You pressed 7." "Anything else? ..."
    await phone.hangup()
    records = await welcome.wait_records(1)

    record = records[0]
    assert [(i["step"], i["outcome"], i["value"], i["method"]) for i in record.inputs][:1] == [
        ("menu", "dtmf", "7", "rfc4733")
    ]
    assert record.path[:3] == ["menu", "confirm", "more"]
    speech_s = phone.speech_s()  # three prompts (about 6 s) reached the phone through PCMU
    assert speech_s > 3.0, f"the SIP phone heard {speech_s:.1f} s of speech"


async def test_invite_from_an_address_not_allowed_is_refused(
    welcome: Bot,
    make_sip: MakeSip,
    phone: Baresip,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sip = await make_sip({"carrier": Trunk("carrier", allow=("192.0.2.10",))})
    await phone.start()
    with caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"):
        await phone.command("dial", f"sip:5550001000@127.0.0.1:{sip.port}")
        await phone.wait_for_log("403 Forbidden")
    assert "not in any trunk's allow list" in caplog.text
    assert not welcome.active and not welcome.records  # the flow never saw a call


async def test_an_offer_with_no_common_codec_is_refused(
    welcome: Bot,
    sip_local: SipConnector,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sip = sip_local
    phone = Baresip(tmp_path, "opus-only", codecs=("opus",))
    try:
        await phone.start()
        with caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"):
            await phone.command("dial", f"sip:5550001000@127.0.0.1:{sip.port}")
            await phone.wait_for_log("488 Not Acceptable")
    finally:
        await phone.stop()
    assert "Not Acceptable Here" in caplog.text  # PJSIP's line: verification failed
    assert not welcome.active and not welcome.records


async def test_garbage_is_logged_and_calls_go_on(
    welcome: Bot,
    sip_local: SipConnector,
    phone: Baresip,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sip = sip_local
    broken = (  # a request without From, To, Call-ID or CSeq
        f"OPTIONS sip:ivrbot@127.0.0.1:{sip.port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-garbage\r\nContent-Length: 0\r\n\r\n"
    )
    with (
        caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer,
    ):
        peer.sendto(bytes(range(256)) * 4, ("127.0.0.1", sip.port))  # not SIP at all
        peer.sendto(broken.encode(), ("127.0.0.1", sip.port))
        async with asyncio.timeout(5):
            while "Missing required header" not in caplog.text:
                await asyncio.sleep(0.05)
    assert "PJSIP: Error processing packet from 127.0.0.1" in caplog.text
    await phone.start()
    await phone.command("dial", f"sip:5550001000@127.0.0.1:{sip.port}")
    await prompt_done(welcome, 1)  # the next caller is served as usual
    await phone.hangup()
