"""The SIP connector's pure logic: settings, number and URI mapping, failure outcomes."""

from __future__ import annotations

import pytest

from ivrbot.config import Settings
from ivrbot.gateway.switch import Reason
from ivrbot.sip.calls import uri_user
from ivrbot.sip.connector import called_uri, failure_reason
from ivrbot.sip.dialout import dialled_number
from ivrbot.sip.settings import SipConfigError, parse_sip_settings
from ivrbot.store.base import REASON_OUTCOMES

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


def test_environment_overrides_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVRBOT_SIP_PORT", "5999")
    monkeypatch.setenv("IVRBOT_SIP_MEDIA_PORTS", "30000-30100")
    settings = parse_sip_settings({**DATA, **Settings().sip_overrides()})
    assert (settings.port, settings.media_ports) == (5999, (30000, 30100))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"port": "x"}, "SIP port 'x' (port, IVRBOT_SIP_PORT): a number expected"),
        ({"media_ports": "40000"}, "write a port range like 40000-40999"),
        ({"media_ports": "40000-40003", "max_calls": 4}, "4 calls need 8 ports"),
        ({"trunks": {"t": {"uri": "192.0.2.1"}}}, "write it as sip:HOST[:PORT]"),
        ({"accounts": {"a": {"user": "1"}}}, "accounts.a.registrar is missing"),
        ({"trunks": ["x"]}, "[trunks.NAME] sections expected"),
    ],
)
def test_bad_settings_name_what_to_fix(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(SipConfigError) as caught:
        parse_sip_settings(data)
    assert message in str(caught.value)


def test_sip_failures_become_call_record_outcomes() -> None:
    outcomes = {
        code: REASON_OUTCOMES.get(failure_reason(code))
        for code in (486, 603, 404, 480, 487, 408, 503)
    }
    assert outcomes == {
        486: "busy", 603: "rejected", 404: "not-found", 480: "no-answer", 487: "no-answer",
        408: "unreachable", 503: "unreachable",
    }  # fmt: skip
    assert failure_reason(486) == Reason.BUSY


def test_numbers_and_uris() -> None:
    assert called_uri("5550001000", "ivrbot.local") == "tel:+15550001000"
    assert called_uri("+44 20 7946 0000", "ivrbot.local") == "tel:+442079460000"
    assert called_uri("alice", "ivrbot.local") == "sip:alice@ivrbot.local"
    assert dialled_number("tel:+15550002000") == "5550002000"
    assert dialled_number("sip:bob@example.com") == ""
    assert uri_user('"Bob" <sip:+1555@host;x=y>') == "+1555"
    assert uri_user("sip:201@192.0.2.5:5060") == "201"
