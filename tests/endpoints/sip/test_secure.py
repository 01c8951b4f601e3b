"""SIP over TCP and TLS, and SRTP: a SIP phone (baresip) calls a flow over TCP, and over TLS
(a self-signed certificate made by the test) with SDES-SRTP audio; what it hears and the
keys it sends are measured as over UDP. A trunk that requires SRTP refuses plain RTP, and
a TLS port fed garbage logs it and goes on serving."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import SipConfigError, Trunk
from ivrbot.flow.runner import Bot
from ivrbot.speech.tts import Synthesizer
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.conftest import MakeSip
from tests.endpoints.sip.peers import Baresip, self_signed
from tests.endpoints.sip.test_inbound import prompt_done
from tests.endpoints.sip.test_outbound import CALLEE, notice

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker


async def secure_sip(make_sip: MakeSip, tmp_path: Path, srtp: str = "off") -> SipConnector:
    cert, key = self_signed(tmp_path)
    trunk = Trunk("local", allow=("127.0.0.1",), srtp=srtp)
    return await make_sip({"local": trunk}, transports=("udp", "tcp", "tls"),
                          tls_cert_file=str(cert), tls_key_file=str(key))  # fmt: skip


async def call_menu(phone: Baresip, welcome: Bot, uri: str, sip: SipConnector) -> dict:  # type: ignore[type-arg]
    """Dial the welcome flow, press 7, hang up: the status of the SIP call while it was up."""
    await phone.command("dial", uri)
    await prompt_done(welcome, 1)  # "Welcome to ivrbot. Press a key, or say a word."
    during = dict(sip.status()["calls"][0])
    await phone.command("sndcode", "7")  # RFC 4733 (inside SRTP when the audio is)
    await prompt_done(welcome, 3)  # "You pressed 7." "Anything else? ..."
    await phone.hangup()
    records = await welcome.wait_records(1)
    assert [(i["value"], i["method"]) for i in records[0].inputs][:1] == [("7", "rfc4733")]
    return during


async def test_a_phone_calls_a_flow_over_tcp(
    welcome: Bot, make_sip: MakeSip, phone: Baresip, tmp_path: Path
) -> None:
    # plain RTP over TCP, to a trunk where SRTP is optional (PJSIP's default secure
    # signalling refused such calls: SRTP on, and no TLS)
    sip = await secure_sip(make_sip, tmp_path, srtp="optional")
    assert sip.stack.ports["tcp"] == sip.stack.ports["udp"] == sip.port
    await phone.start()
    during = await call_menu(phone, welcome, f"sip:5550001000@127.0.0.1:{sip.port};transport=tcp",
                             sip)  # fmt: skip
    assert (during["transport"], during["srtp"]) == ("tcp", False)
    speech_s = phone.speech_s()
    assert speech_s > 3.0, f"the SIP phone heard {speech_s:.1f} s of speech over TCP"


async def test_a_phone_calls_over_tls_with_srtp_audio(
    welcome: Bot, make_sip: MakeSip, tmp_path: Path
) -> None:
    sip = await secure_sip(make_sip, tmp_path, srtp="mandatory")
    phone = Baresip(tmp_path, modules=("srtp",), cafile=tmp_path / "sip.crt")
    try:
        await phone.start(f"<sip:phone@127.0.0.1:{phone.sip_port}>;regint=0;mediaenc=srtp-mand")
        uri = f"sip:5550001000@127.0.0.1:{sip.stack.ports['tls']};transport=tls"
        during = await call_menu(phone, welcome, uri, sip)
        speech_s = phone.speech_s()
    finally:
        await phone.stop()
    assert (during["transport"], during["srtp"]) == ("tls", True)
    # baresip sent RTP/SAVP with SDES keys and decoded what came back with them
    assert speech_s > 3.0, f"the SIP phone heard {speech_s:.1f} s of speech over SRTP"


async def test_a_trunk_that_requires_srtp_refuses_plain_rtp(
    welcome: Bot,
    make_sip: MakeSip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sip = await secure_sip(make_sip, tmp_path, srtp="mandatory")
    phone = Baresip(tmp_path, cafile=tmp_path / "sip.crt")
    try:
        await phone.start()
        with caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"):
            uri = f"sip:5550001000@127.0.0.1:{sip.stack.ports['tls']};transport=tls"
            await phone.command("dial", uri)
            await phone.wait_for_log("488 Not Acceptable")
    finally:
        await phone.stop()
    assert 'local has srtp = "mandatory" and the offer has no SRTP' in caplog.text
    assert not welcome.active and not welcome.records and sip.rejected == 1


async def test_garbage_on_the_tls_port_is_logged_and_calls_go_on(
    welcome: Bot,
    make_sip: MakeSip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sip = await secure_sip(make_sip, tmp_path)
    tls_port = sip.stack.ports["tls"]
    with caplog.at_level(logging.WARNING, logger="ivrbot.endpoints.sip"):
        for garbage in (bytes(range(256)) * 4, b"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", tls_port)) as peer:
                peer.sendall(garbage)
                peer.settimeout(5)
                try:
                    while peer.recv(4096):  # until PJSIP closes it
                        pass
                except (ConnectionResetError, TimeoutError):
                    pass
        async with asyncio.timeout(5):
            while caplog.text.count("Handshake failed") < 2:
                await asyncio.sleep(0.05)
    assert "PJSIP: Handshake failed on 127.0.0.1:" in caplog.text  # one line each
    phone = Baresip(tmp_path, cafile=tmp_path / "sip.crt")
    try:
        await phone.start()
        await phone.command("dial", f"sip:5550001000@127.0.0.1:{tls_port};transport=tls")
        await prompt_done(welcome, 1)  # the next caller is served as usual, over TLS
        await phone.hangup()
    finally:
        await phone.stop()


async def test_a_flow_dials_out_over_tls_with_srtp(
    gateway: GatewayServer, tts: Synthesizer, make_sip: MakeSip, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "phone")  # the phone's own TLS server certificate
    both = tmp_path / "phone.pem"
    both.write_text(cert.read_text() + key.read_text())
    phone = Baresip(tmp_path, user=CALLEE, modules=("srtp",), certificate=both)
    trunk = Trunk("pbx", uri=f"sip:127.0.0.1:{phone.sip_port + 1}", caller_id="5550001005",
                  prefixes=("555000",), transport="tls", srtp="mandatory")  # fmt: skip
    ours, our_key = self_signed(tmp_path)
    sip = await make_sip({"pbx": trunk}, transports=("udp", "tls"), tls_cert_file=str(ours),
                         tls_key_file=str(our_key))  # fmt: skip
    bot = Bot(notice(), gateway.url, tts, None, gateway=gateway.gateway, inbound=False)
    await bot.start()
    try:
        await phone.start(
            f"<sip:{CALLEE}@127.0.0.1:{phone.sip_port}>;regint=0;answermode=auto;mediaenc=srtp-mand"
        )
        flow_call = await bot.dial(CALLEE)
        async with asyncio.timeout(15):
            while not sip.status()["calls"] or not sip.status()["calls"][0]["answered"]:
                await asyncio.sleep(0.05)
        during = dict(sip.status()["calls"][0])
        record = await bot.finished_call(flow_call, timeout_s=30)
        await phone.wait_for_log("audio: destroyed")
        speech_s = phone.speech_s()
    finally:
        await bot.stop()
        await phone.stop()
    assert record.path == ["hello", "bye"]
    assert during["srtp"] is True, during
    assert speech_s > 1.5, f"the SIP phone heard {speech_s:.1f} s of speech over SRTP"


async def test_a_port_taken_names_the_transport_and_sip_starts_again_later(
    make_sip: MakeSip, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SipConfigError) as caught:
            await make_sip({}, port=port, transports=("udp", "tcp"))
    assert f"SIP TCP did not start on 127.0.0.1:{port} (port, IVRBOT_SIP_PORT)" in str(caught.value)
    sip = await secure_sip(make_sip, tmp_path)  # PJSIP was destroyed: it starts again
    assert set(sip.stack.ports) == {"udp", "tcp", "tls"}
