"""The SIP connector's pure logic: settings, number and URI mapping, failure outcomes."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivrbot.config import Settings
from ivrbot.core.switch import Reason
from ivrbot.endpoints.sip.calls import invite_of, uri_user
from ivrbot.endpoints.sip.connector import called_uri, failure_reason
from ivrbot.endpoints.sip.dialout import dialled_number
from ivrbot.endpoints.sip.refer import Referrer, outcome_of
from ivrbot.endpoints.sip.settings import SipConfigError, parse_sip_settings
from ivrbot.outcomes import of_reason
from tests.endpoints.sip.peers import self_signed

DATA = {
    "port": 5070,
    "trunks": {
        "carrier": {
            "allow": ["192.0.2.10", "198.51.100.0/24"],
            "routes": {"+15551230000": "5550001000"},
            "uri": "sip:192.0.2.10:5060",
            "prefixes": ["1", "+1"],
            "caller_id": "+15551230000",
        }
    },
    "accounts": {"office": {"registrar": "sip:192.0.2.5:5060;transport=udp", "user": "201"}},
}


@pytest.mark.unit
def test_trunks_take_invites_from_their_addresses_and_route_numbers() -> None:
    settings = parse_sip_settings(DATA)
    assert settings.trunk_for("198.51.100.77") is settings.trunks["carrier"]
    assert settings.trunk_for("203.0.113.1") is None and settings.trunk_for("junk") is None
    trunk = settings.trunks["carrier"]
    assert trunk.route("+15551230000") == "5550001000" and trunk.route("777") == "777"
    assert settings.trunk_dialling("15550002000") is trunk
    assert settings.trunk_dialling("5550002000") is None  # no prefix of the trunk
    assert trunk.dial_uri("15550002000") == "sip:15550002000@192.0.2.10:5060"
    account = settings.accounts["office"]
    assert account.registrar_host == "192.0.2.5" and account.uri == "sip:201@192.0.2.5:5060"


@pytest.mark.unit
def test_environment_overrides_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRBOT_SIP_PORT", "5999")
    monkeypatch.setenv("IVRBOT_SIP_MEDIA_PORTS", "30000-30100")
    settings = parse_sip_settings({**DATA, **Settings().sip_overrides()})
    assert (settings.port, settings.media_ports) == (5999, (30000, 30100))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"port": "x"}, "SIP port 'x' (port, IVRBOT_SIP_PORT): a number expected"),
        ({"media_ports": "40000"}, "write a port range like 40000-40999"),
        ({"media_ports": "40000-40003", "max_calls": 4}, "4 calls need 8 ports"),
        ({"trunks": {"t": {"uri": "192.0.2.1"}}}, "write it as sip:HOST[:PORT]"),
        ({"accounts": {"a": {"user": "1"}}}, "accounts.a.registrar is missing"),
        ({"trunks": ["x"]}, "[trunks.NAME] sections expected"),
        ({"transports": ["udp", "sctp"]}, "transports: 'sctp' is not a SIP transport; use udp"),
        ({"transports": "udp,wss"}, "transports: 'wss' is not a SIP transport"),
        ({"transports": []}, "transports: a list like"),
        ({"transports": ["tls"]}, 'transports has "tls": set tls_cert_file (a PEM file)'),
        ({"trunks": {"t": {"transport": "tcp"}}}, "trunks.t.transport='tcp': add 'tcp' to "),
        ({"trunks": {"t": {"srtp": "yes"}}}, "trunks.t.srtp='yes': use one of off, optional"),
        ({"trunks": {"t": {"refer": "yes"}}}, "trunks.t.refer='yes': true or false"),
        ({"accounts": {"a": {"registrar": "sip:x", "user": "1", "srtp": 1}}}, "accounts.a.srtp"),
        ({"tls_port": 70000}, "tls_port=70000: use 0-65535"),
    ],
)
def test_bad_settings_name_what_to_fix(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SipConfigError) as caught:
        parse_sip_settings(data)
    assert message in str(caught.value)


@pytest.mark.unit
def test_sip_failures_become_call_record_outcomes() -> None:
    outcomes = {
        code: of_reason(failure_reason(code), answered=False)
        for code in (486, 603, 404, 480, 487, 408, 503)
    }
    assert outcomes == {
        486: "busy", 603: "rejected", 404: "not-found", 480: "no-answer", 487: "no-answer",
        408: "failed", 503: "failed",
    }  # fmt: skip
    assert failure_reason(486) == Reason.BUSY


@pytest.mark.unit
def test_numbers_and_uris() -> None:
    assert called_uri("5550001000", "ivrbot.local") == "tel:+15550001000"
    assert called_uri("+44 20 7946 0000", "ivrbot.local") == "tel:+442079460000"
    assert called_uri("alice", "ivrbot.local") == "sip:alice@ivrbot.local"
    assert dialled_number("tel:+15550002000") == "5550002000"
    assert dialled_number("sip:bob@example.com") == ""
    assert uri_user('"Bob" <sip:+1555@host;x=y>') == "+1555"
    assert uri_user("sip:201@192.0.2.5:5060") == "201"


@pytest.mark.contract
def test_tls_files_that_do_not_load_are_named(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    unreadable = tmp_path / "secret.key"
    unreadable.write_text("x")
    unreadable.chmod(0)
    cases = {
        (str(tmp_path / "missing.crt"), str(key)): "tls_cert_file=",
        (str(junk), str(key)): "not a PEM certificate and its private key",
        (str(cert), str(junk)): "not a PEM certificate and its private key",
        (str(key), str(cert)): "not a PEM certificate and its private key",
    }
    if os.geteuid() != 0:  # root reads any file
        cases[(str(cert), str(unreadable))] = "tls_key_file="
    for (cert_file, key_file), message in cases.items():
        data = {"transports": ["udp", "tls"], "tls_cert_file": cert_file, "tls_key_file": key_file}
        with pytest.raises(SipConfigError) as caught:
            parse_sip_settings(data)
        assert message in str(caught.value), (cert_file, key_file, str(caught.value))
    good = parse_sip_settings(
        {"transports": ["udp", "tcp", "tls"], "tls_cert_file": str(cert), "tls_key_file": str(key)}
    )
    assert good.transports == ("udp", "tcp", "tls") and good.srtp == "off"


@pytest.mark.unit
def test_srtp_modes_and_trunk_uris() -> None:
    data = {
        "transports": ["udp", "tcp"],
        "trunks": {
            "plain": {"uri": "sip:192.0.2.1"},
            "secure": {"uri": "sip:192.0.2.2:5061", "transport": "tcp", "srtp": "mandatory"},
        },
    }
    settings = parse_sip_settings(data)
    assert settings.trunks["secure"].dial_uri("555") == "sip:555@192.0.2.2:5061;transport=tcp"
    assert settings.trunks["plain"].dial_uri("555") == "sip:555@192.0.2.1"
    # calls in are taken as 'optional' before the trunk is known; the connector holds each
    # call to its trunk's own mode
    assert settings.srtp == "optional"


@pytest.mark.unit
def test_an_invite_is_read_for_its_transport_and_srtp() -> None:
    message = (
        "INVITE sip:5550001000@127.0.0.1:5061;transport=tls SIP/2.0\r\n"
        "Via: SIP/2.0/TLS 127.0.0.1:40001;branch=z9hG4bK1\r\n"
        "From: <sip:alice@127.0.0.1>;tag=1\r\n\r\n"
        "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
    )
    invite = invite_of("", "127.0.0.1", "sip:ivrbot@127.0.0.1", "<sip:alice@127.0.0.1>", message)
    assert (invite.called, invite.transport, invite.srtp) == ("5550001000", "tls", True)
    plain = message.replace("TLS", "UDP").split("\r\n\r\n")[0] + "\r\n\r\nv=0\r\n"
    invite = invite_of("", "127.0.0.1", "sip:ivrbot@127.0.0.1", "x", plain)
    assert (invite.transport, invite.srtp) == ("udp", False)


@pytest.mark.unit
def test_refer_targets() -> None:
    settings = parse_sip_settings(
        {
            "trunks": {
                "pbx": {"uri": "sip:192.0.2.5", "prefixes": ["55500020"], "refer": True},
                "carrier": {"uri": "sip:192.0.2.10", "prefixes": ["1"]},
            }
        }
    )
    referrer = Referrer(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    assert referrer.refer_to("sip:bob@pbx.example.com") == "sip:bob@pbx.example.com"
    assert referrer.refer_to("5550002001") == "sip:5550002001@192.0.2.5"  # a REFER trunk
    assert referrer.refer_to("15557770000") is None  # its trunk bridges: no refer = true
    assert referrer.refer_to("agent@ivrbot.local") is None  # a user of the gateway
    assert [outcome_of(c) for c in (200, 486, 603, 487, 404, 503)] == [
        "transferred", "busy", "rejected", "no-answer", "failed", "failed",
    ]  # fmt: skip
