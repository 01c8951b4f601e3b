"""Phone methods: the spec's checks in order (error codes), and media modification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivrbot.errors import PhoneException
from ivrbot.phone.call import CallState
from ivrbot.phone.phone import Phone
from ivrbot.wire.server import GatewayServer
from tests.helpers import code_of
from tests.wire.test_calls import Party, login


@pytest.mark.unit
async def test_checks_before_login_publish_error_events() -> None:
    phone = Phone("http://127.0.0.1:9")  # nothing listens there; no request is made
    errors: list[Any] = []
    phone.on("error", errors.append)
    assert await code_of(phone.login()) == "2001"
    assert await code_of(phone.login(e911_id="x")) == "2002"
    assert await code_of(phone.logout()) == "2101"
    assert await code_of(phone.dial()) == "2201"
    assert await code_of(phone.dial("")) == "2211"
    assert await code_of(phone.dial("sip:bob@x")) == "2212"
    assert await code_of(phone.dial("a@b@c")) == "2213"
    assert await code_of(phone.dial("5550001000", media_type="fax")) == "2221"
    assert await code_of(phone.dial("5550001000", local_media="mic")) == "2231"  # type: ignore[arg-type]
    assert await code_of(phone.dial("5550001000", remote_media="speaker")) == "2232"
    assert await code_of(phone.dial("5550001000")) == "2241"
    assert await code_of(phone.answer()) == "2321"
    assert await code_of(phone.hangup()) == "2401"
    assert await code_of(phone.cancel()) == "2901"
    assert await code_of(phone.reject()) == "3001"
    assert await code_of(phone.mute()) == "2701"
    assert await code_of(phone.unmute()) == "2801"
    assert await code_of(phone.hold()) == "2501"
    assert await code_of(phone.resume()) == "2601"
    assert await code_of(phone.move()) == "4001"
    assert await code_of(phone.switch_call()) == "4201"
    assert await code_of(phone.transfer()) == "4101"
    assert await code_of(phone.upgrade()) == "4601"
    assert await code_of(phone.downgrade()) == "4501"
    assert await code_of(phone.accept_modification()) == "4301"
    assert await code_of(phone.reject_modification()) == "4401"
    assert await code_of(phone.send_dtmf_tone()) == "4711"
    assert await code_of(phone.send_dtmf_tone("12x")) == "4712"
    assert await code_of(phone.send_dtmf_tone("12", gap=20)) == "4712"
    assert await code_of(phone.send_dtmf_tone("12")) == "4721"
    assert await code_of(phone.add_call()) == "3901"
    assert await code_of(phone.add_call("tel:+1")) == "3912"
    assert await code_of(phone.add_call("5550001000")) == "3941"
    assert await code_of(phone.add_call("a@b@c")) == "3913"
    assert await code_of(phone.add_call("5550001000", media_type="fax")) == "3921"
    assert await code_of(phone.add_call("5550001000", local_media="mic")) == "3931"  # type: ignore[arg-type]
    assert await code_of(phone.add_call("5550001000", remote_media="speaker")) == "3932"
    assert await code_of(phone.answer(local_media="mic")) == "2311"  # type: ignore[arg-type]
    assert await code_of(phone.answer(remote_media="speaker")) == "2312"  # type: ignore[arg-type]
    assert len(errors) == 39
    assert errors[0].to_dict()["ErrorCode"] == "2001" and errors[0].to_dict()["JSMethod"] == "login"
    with pytest.raises(PhoneException):
        phone.on("call:ringing", print)  # not an event name in the spec
    assert errors[-1].error_code == "4902"


@pytest.fixture
async def pair(gateway: GatewayServer) -> AsyncIterator[tuple[Party, Party]]:
    alice, bob = Party(gateway.url, "alice"), Party(gateway.url, "bob")
    await login(alice, gateway.url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bob, gateway.url, "ACCOUNT_ID", "bob@ivrbot.local")
    yield alice, bob
    await alice.phone.close()
    await bob.phone.close()


@pytest.mark.e2e
async def test_checks_in_a_call(pair: tuple[Party, Party]) -> None:
    alice, bob = pair
    assert await code_of(alice.phone.login(token="x")) == "2003"  # already logged in
    assert await code_of(alice.phone.hangup()) == "2402"
    assert await code_of(alice.phone.hold()) == "2502"
    assert await code_of(alice.phone.cancel()) == "2902"
    assert await code_of(bob.phone.reject()) == "3002"
    assert await code_of(bob.phone.answer()) == "2331"
    assert await code_of(alice.phone.send_dtmf_tone("1")) == "4731"
    await alice.phone.dial("bob@ivrbot.local", remote_media=alice.hear)
    assert await code_of(alice.phone.dial("bob@ivrbot.local")) == "2251"
    assert await code_of(alice.phone.send_dtmf_tone("1")) == "4741"
    await bob.wait("call:incoming")
    await bob.phone.answer(remote_media=bob.hear)
    await alice.wait("call:connected")
    assert await code_of(alice.phone.dial("bob@ivrbot.local")) == "2252"
    assert await code_of(alice.phone.resume()) == "2603"
    assert await code_of(alice.phone.switch_call()) == "4203"
    assert await code_of(alice.phone.transfer()) == "4105"
    assert await code_of(alice.phone.downgrade()) == "4504"  # already audio
    assert await code_of(alice.phone.accept_modification()) == "4304"
    await alice.phone.hold()
    assert await code_of(alice.phone.hold()) == "2503"
    assert await code_of(alice.phone.move()) == "4003"
    await alice.phone.resume()
    warnings: list[Any] = []
    alice.phone.on("warning", warnings.append)
    await alice.phone.mute()
    await alice.phone.mute()
    assert len(warnings) == 1  # muting twice warns, it is not an error


@pytest.mark.e2e
@pytest.mark.parametrize("accept", [True, False])
async def test_upgrade_accepted_or_rejected(pair: tuple[Party, Party], accept: bool) -> None:
    alice, bob = pair
    changes: list[Any] = []
    offered: list[Any] = []
    alice.phone.on("call:media-modification", changes.append)
    bob.phone.on("call:modification-in-progress", offered.append)
    await alice.phone.dial("bob@ivrbot.local")
    await bob.wait("call:incoming")
    await bob.phone.answer()
    await alice.wait("call:connected")
    await alice.phone.upgrade()
    assert (
        alice.phone.current_call
        and alice.phone.current_call.state == CallState.MODIFICATION_INITIATED
    )
    await bob.wait("call:modification-in-progress")
    assert offered[0].get("newMediaType") == "video"
    await (bob.phone.accept_modification() if accept else bob.phone.reject_modification())
    await alice.wait("call:media-modification")
    assert changes[0].get("accepted") is accept
    assert alice.phone.get_media_type() == ("video" if accept else "audio")
    assert alice.phone.current_call.state == CallState.CONNECTED


@pytest.mark.e2e
async def test_ice_settings_and_e911_association_checks(pair: tuple[Party, Party]) -> None:
    alice, _ = pair
    phone = alice.phone
    assert await code_of(phone.associate_e911_id()) == "2051"
    assert await code_of(phone.associate_e911_id(42)) == "2052"
    with pytest.raises(PhoneException) as bad_servers:
        phone.set_ice_servers([{"urls": "http://example"}])
    assert bad_servers.value.error.error_code == "4811"
    with pytest.raises(PhoneException) as bad_policy:
        phone.set_ice_transport("sometimes")
    assert bad_policy.value.error.error_code == "4821"
    phone.set_ice_servers(["stun:127.0.0.1:3478", {"urls": ["turn:127.0.0.1"], "username": "u"}])
    assert [s.urls for s in phone.ice_servers] == [["stun:127.0.0.1:3478"], ["turn:127.0.0.1"]]
    phone.set_ice_servers([])
    phone.set_ice_transport("relay")
    assert phone.ice_transport == "relay"
    logged_out = Phone("http://127.0.0.1:9")
    assert await code_of(logged_out.associate_e911_id("abc")) == "2053"


@pytest.mark.e2e
async def test_second_incoming_call_with_hold_or_end(gateway: GatewayServer) -> None:
    url = gateway.url
    alice, bob, carol = Party(url, "alice"), Party(url, "bob"), Party(url, "carol")
    for party in (alice, bob, carol):
        await login(party, url, "ACCOUNT_ID", f"{party.phone.name}@ivrbot.local")
    try:
        await bob.phone.dial("alice@ivrbot.local")
        await alice.wait("call:incoming")
        await alice.phone.answer()
        await bob.wait("call:connected")
        await carol.phone.dial("alice@ivrbot.local")
        await alice.wait("call:incoming", 2)
        assert await code_of(alice.phone.answer()) == "2341"  # a call is in progress
        await alice.phone.answer(action="hold")
        await carol.wait("call:connected")
        states = sorted(c["state"] for c in alice.phone.get_calls())
        assert states == ["connected", "held"]
        await carol.phone.hangup()  # the held call (bob) comes back by itself
        await alice.wait("call:resumed")
        assert [c["state"] for c in alice.phone.get_calls()] == ["connected"]
        await carol.phone.dial("alice@ivrbot.local")
        await alice.wait("call:incoming", 3)
        await alice.phone.answer(action="end")
        await bob.wait("call:disconnected")
        await carol.wait("call:connected", 2)
        assert len(alice.phone.get_calls()) == 1
    finally:
        for party in (alice, bob, carol):
            await party.phone.close()


@pytest.mark.e2e
async def test_hold_and_resume_renegotiate_with_the_gateway(pair: tuple[Party, Party]) -> None:
    """The Phone speaks the wire's sequence: an offer with the hold (sendonly) and the resume
    (sendrecv); the gateway's answer, from mod-terminated, sets the negotiated direction."""
    alice, bob = pair
    call = await alice.phone.dial("bob@ivrbot.local")
    await bob.wait("call:incoming")
    await bob.phone.answer()
    await alice.wait("call:connected")
    assert alice.events["call:ringback-provided"], "the early answer came with ringback"
    (audio,) = [t for t in call.pc.getTransceivers() if t.kind == "audio"]
    assert audio.currentDirection == "sendrecv"
    await alice.phone.hold()
    assert call.state == CallState.HELD and call.pc.signalingState == "stable"
    assert audio.currentDirection == "sendonly"  # the gateway answered recvonly
    await alice.phone.resume()
    assert call.state == CallState.CONNECTED and audio.currentDirection == "sendrecv"
