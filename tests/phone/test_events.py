"""Every event a call publishes carries the spec's fields; call:state-changed chains."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivrbot.events import Event
from ivrbot.phone.phone import Phone
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

EVENT_DATA = {"index", "timestamp", "callType", "mediaType", "to", "from"}
SIMPLE = {
    "dialing": {"to", "mediaType", "timestamp"},
    "answering": {"from", "mediaType", "codec", "timestamp"},
    "call:incoming": {"from", "mediaType", "codec", "timestamp"},
    "session:ready": {"sessionId", "timeStamp"},
}


def as_dict(payload: Any) -> dict[str, Any]:
    return payload.to_dict() if hasattr(payload, "to_dict") else dict(payload or {})


class Recorder(Party):
    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        self.all: list[tuple[str, dict[str, Any]]] = []
        for event in Event:
            self.phone.on(event, lambda p, e=event: self.all.append((e.value, as_dict(p))))

    def names(self) -> list[str]:
        return [n for n, _ in self.all]


@pytest.fixture
async def pair(gateway: GatewayServer) -> AsyncIterator[tuple[Recorder, Recorder]]:
    alice, bob = Recorder(gateway.url, "alice"), Recorder(gateway.url, "bob")
    await login(alice, gateway.url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bob, gateway.url, "VIRTUAL_NUMBER", "vtn:5550001000")
    yield alice, bob
    await alice.phone.close()
    await bob.phone.close()


@pytest.mark.e2e
async def test_payloads_and_state_chain(pair: tuple[Recorder, Recorder]) -> None:
    alice, bob = pair
    await alice.phone.dial("5550001000")
    await bob.wait("call:incoming")
    await alice.wait("call:ringback-provided")
    await bob.phone.answer()
    await alice.wait("call:connected")
    await bob.wait("call:connected")
    await alice.phone.send_dtmf_tone("1")
    await bob.wait("dtmf:tone-received")
    await alice.phone.mute()
    await alice.phone.unmute()
    await alice.phone.hold()
    await alice.phone.resume()
    await alice.phone.hangup()
    await bob.wait("call:disconnected")

    for party in (alice, bob):
        for name, payload in party.all:
            if name in SIMPLE:
                assert SIMPLE[name] <= set(payload), (party.tone_name, name, payload)
            elif name.startswith(("call:", "dtmf:", "media:")):
                assert EVENT_DATA <= set(payload), (party.tone_name, name, payload)
                assert payload["callType"] == "call" and payload["mediaType"] == "audio"
        changes = [p for n, p in party.all if n == "call:state-changed"]
        for before, after in itertools.pairwise(changes):
            assert before["newState"] == after["oldState"], (party.tone_name, before, after)
        states = [changes[0]["oldState"], *(c["newState"] for c in changes)]
        if party is alice:
            assert states == ["created", "connecting", "connected", "held", "connected",
                              "disconnecting", "disconnected"]  # fmt: skip
        else:
            assert states == ["created", "connecting", "connected", "disconnected"]

    out = dict(alice.all)
    assert out["dialing"]["to"] == "tel:+5550001000"
    assert out["call:connected"]["to"] == "tel:+5550001000"
    assert out["call:connected"]["generator"] == "initiator"
    assert out["dtmf:tone-sent"]["tone"] == "1"
    received = dict(bob.all)
    assert received["call:incoming"]["from"] == "sip:alice@ivrbot.local"
    assert received["call:connected"]["from"] == "sip:alice@ivrbot.local"
    assert received["call:connected"]["generator"] == "receiver"
    assert received["call:disconnected"]["message"] == "Call terminated"
    assert received["dtmf:tone-received"]["tone"] == "1"
    order = alice.names()
    assert order.index("dialing") < order.index("call:ringback-provided")
    assert order.index("call:ringback-provided") < order.index("call:connected")
    assert order.index("call:muted") < order.index("call:unmuted") < order.index("call:held")


@pytest.mark.unit
async def test_unknown_event_names_are_refused_at_subscription() -> None:
    phone = Phone("http://127.0.0.1:9")
    errors: list[Any] = []
    phone.on("error", errors.append)
    for bad in ("call:ringing", "CALL:INCOMING", ""):
        with pytest.raises(Exception):  # noqa: B017 - PhoneException, checked below
            phone.on(bad, print)
    assert [e.error_code for e in errors] == ["4902", "4902", "4902"]
