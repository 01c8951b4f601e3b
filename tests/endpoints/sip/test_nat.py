"""Behind NAT: ivrbot tells its SIP peers the public address it is reached at (Via, Contact
and the SDP), and the peer's media sent there arrives. On 127.0.0.1 the "public" address is
127.0.0.2 (loopback too); ivrbot listens on every address, as it would behind a NAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivrbot.endpoints.sip.settings import SipConfigError, Trunk, parse_sip_settings
from ivrbot.flow.runner import Bot
from tests.endpoints.sip.conftest import MakeSip
from tests.endpoints.sip.peers import Baresip
from tests.endpoints.sip.test_inbound import prompt_done

PUBLIC = "127.0.0.2"


@pytest.mark.e2e
@pytest.mark.xdist_group("sip")  # PJSIP media ports: one worker
async def test_peers_are_told_the_public_address_and_media_sent_there_arrives(
    welcome: Bot, make_sip: MakeSip, phone: Baresip, tmp_path: Path
) -> None:
    log = tmp_path / "pjsip.log"
    trunk = {"local": Trunk("local", allow=("127.0.0.1",))}
    sip = await make_sip(trunk, host="0.0.0.0", public_address=PUBLIC, log_file=str(log))
    await phone.start()
    await phone.command("dial", f"sip:5550001000@127.0.0.1:{sip.port}")
    await prompt_done(welcome, 1)
    await phone.command("sndcode", "7")  # RFC 4733: RTP the phone sends to 127.0.0.2
    await prompt_done(welcome, 3)
    await phone.hangup()
    records = await welcome.wait_records(1)

    inputs = [(i["value"], i["method"]) for i in records[0].inputs]
    assert inputs[:1] == [("7", "rfc4733")]
    assert phone.speech_s() > 3.0  # and ivrbot's prompts reached the phone
    answer = log.read_text().split("SIP/2.0 200 OK", 1)[1].split("--end msg--", 1)[0]
    assert f"c=IN IP4 {PUBLIC}" in answer
    assert f"@{PUBLIC}:" in answer.split("Contact:", 1)[1].splitlines()[0]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"public_address": "pbx.example.com"}, "public_address='pbx.example.com': an IP"),
        ({"stun_servers": "stun.example.net"}, "stun_servers: a list like"),
        ({"stun_servers": ["stun.example.net:x"]}, "stun_servers: a list like"),
    ],
)
def test_bad_nat_settings_name_what_to_fix(data: dict[str, object], message: str) -> None:
    with pytest.raises(SipConfigError) as caught:
        parse_sip_settings(data)
    assert message in str(caught.value)


@pytest.mark.unit
def test_nat_settings_are_read() -> None:
    settings = parse_sip_settings({"public_address": "203.0.113.7", "stun_servers": ["s:3478"]})
    assert (settings.public_address, settings.stun_servers) == ("203.0.113.7", ("s:3478",))
