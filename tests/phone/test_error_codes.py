"""The spec's in-call error codes, each reached through the real gateway on 127.0.0.1.

Every case brings real Phones into the situation spec/phone-api.md describes, then asserts
the raised code and that exactly one ``error`` event carried the same error object.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from ivrbot.errors import PhoneException, request_error
from ivrbot.phone.call import CallState
from ivrbot.phone.transport_remote import GatewayUnreachable, Response
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

pytestmark = pytest.mark.e2e


class Caller(Party):
    """A Party that also records the conference and state events these tests wait for."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(url, name)
        for event in ("conference:connected", "conference:held", "call:state-changed"):
            self.phone.on(event, self._record(event))


async def expect(party: Party, action: Awaitable[Any], code: str, method: str) -> None:
    """``action`` fails with ``code``, and the one ``error`` event it published says so too."""
    before = len(party.events.get("error", []))
    with pytest.raises(PhoneException) as info:
        await action
    assert info.value.error.error_code == code, info.value.error
    published = party.events.get("error", [])[before:]
    assert [(e.error_code, e.js_method) for e in published] == [(code, method)]
    assert published[0] is info.value.error


@pytest.fixture
async def trio(gateway: GatewayServer) -> AsyncIterator[tuple[Caller, Caller, Caller]]:
    url = gateway.url
    parties = (Caller(url, "alice"), Caller(url, "bob"), Caller(url, "carol"))
    for party in parties:
        await login(party, url, "ACCOUNT_ID", f"{party.phone.name}@ivrbot.local")
    yield parties
    for party in parties:
        await party.phone.close()


async def connect(caller: Caller, callee: Caller, count: int = 1) -> None:
    """``caller`` dials ``callee``, who answers; both see their ``count``-th call:connected."""
    await caller.phone.dial(f"{callee.phone.name}@ivrbot.local")
    await callee.wait("call:incoming", count)
    await callee.phone.answer()
    await caller.wait("call:connected", count)
    await callee.wait("call:connected", count)


def states(party: Caller) -> list[str]:
    return [str(c["state"]) for c in party.phone.get_calls()]


async def test_add_call_needs_one_established_call_and_room_for_another(
    trio: tuple[Caller, Caller, Caller],
) -> None:
    alice, bob, carol = trio
    await expect(alice, alice.phone.add_call("carol@ivrbot.local"), "3951", "add_call")  # none
    await alice.phone.dial("bob@ivrbot.local")
    await bob.wait("call:incoming")
    assert states(alice) == ["connecting"]
    await expect(alice, alice.phone.add_call("carol@ivrbot.local"), "3951", "add_call")
    await bob.phone.answer()
    await alice.wait("call:connected")
    await alice.phone.add_call("carol@ivrbot.local")  # holds bob, dials carol
    await carol.wait("call:incoming")
    # two calls, the current one still connecting: the connecting check comes first
    await expect(alice, alice.phone.add_call("5550001000"), "3951", "add_call")
    await carol.phone.answer()
    await alice.wait("call:connected", 2)
    assert sorted(states(alice)) == ["connected", "held"]
    await expect(alice, alice.phone.add_call("5550001000"), "3961", "add_call")
    assert sorted(states(alice)) == ["connected", "held"], "a refused add_call changes nothing"


async def test_transfer_needs_the_background_call_held(
    trio: tuple[Caller, Caller, Caller],
) -> None:
    """answer(action='hold') holds the current call only when it is connected: a call that
    is still connecting stays as it is and, once answered, is a background call that is
    connected, not held."""
    alice, bob, carol = trio
    await alice.phone.dial("bob@ivrbot.local")
    await bob.wait("call:incoming")
    await carol.phone.dial("alice@ivrbot.local")
    await alice.wait("call:incoming")
    await alice.phone.answer(action="hold")
    await carol.wait("call:connected")
    await bob.phone.answer()
    await alice.wait("call:connected", 2)
    background = alice.phone.background_call
    assert background is not None and background.peer == "sip:bob@ivrbot.local"
    assert background.state == CallState.CONNECTED
    await expect(alice, alice.phone.transfer(), "4103", "transfer")
    assert states(alice) == ["connected", "connected"]


async def test_a_conference_cannot_be_moved_transferred_or_change_media(
    trio: tuple[Caller, Caller, Caller],
) -> None:
    alice, bob, carol = trio
    await connect(alice, bob)
    conference = await alice.phone.start_conference()  # holds bob; an audio conference
    await alice.wait("conference:connected")
    assert alice.phone.current_call is conference and conference.state == CallState.CONNECTED
    assert sorted(states(alice)) == ["connected", "held"]
    await expect(alice, alice.phone.move(), "4004", "move")
    await expect(alice, alice.phone.transfer(), "4104", "transfer")  # current one is it
    await expect(alice, alice.phone.upgrade(), "4605", "upgrade")
    # an audio conference is already audio: that check comes before the conference one
    await expect(alice, alice.phone.downgrade(), "4504", "downgrade")
    await alice.phone.end_conference()
    await alice.wait("call:resumed")  # bob's call, held by start_conference, comes back
    await alice.phone.hangup()
    await bob.wait("call:disconnected")

    video = await alice.phone.start_conference(media_type="video")
    await alice.wait("conference:connected", 2)
    assert alice.phone.current_call is video
    await expect(alice, alice.phone.downgrade(), "4505", "downgrade")
    await expect(alice, alice.phone.upgrade(), "4604", "upgrade")  # already video
    await alice.phone.add_call("carol@ivrbot.local")  # holds the conference
    await carol.wait("call:incoming")
    await carol.phone.answer()
    await alice.wait("call:connected", 2)
    assert video.state == CallState.HELD and alice.phone.background_call is video
    await expect(alice, alice.phone.transfer(), "4104", "transfer")  # the held one is it


async def test_media_modification_codes(trio: tuple[Caller, Caller, Caller]) -> None:
    alice, bob, _ = trio
    await connect(alice, bob)
    await expect(alice, alice.phone.downgrade(), "4504", "downgrade")  # already audio
    await expect(alice, alice.phone.reject_modification(), "4404", "reject_modification")
    await expect(alice, alice.phone.accept_modification(), "4304", "accept_modification")
    await alice.phone.upgrade()
    call = alice.phone.current_call
    assert call is not None and call.state == CallState.MODIFICATION_INITIATED
    # alice's own offer is waiting: her call is neither connected nor held
    await expect(alice, alice.phone.accept_modification(), "4303", "accept_modification")
    await expect(alice, alice.phone.reject_modification(), "4403", "reject_modification")
    await expect(alice, alice.phone.upgrade(), "4603", "upgrade")
    await bob.wait("call:modification-in-progress")
    await bob.phone.accept_modification()
    await alice.wait("call:media-modification")
    await bob.wait("call:media-modification")
    assert alice.phone.get_media_type() == "video" == bob.phone.get_media_type()
    await expect(alice, alice.phone.upgrade(), "4604", "upgrade")
    await expect(bob, bob.phone.upgrade(), "4604", "upgrade")
    await expect(bob, bob.phone.accept_modification(), "4304", "accept_modification")
    await expect(bob, bob.phone.reject_modification(), "4404", "reject_modification")


async def test_a_held_call_stays_held_when_a_modification_is_settled(
    trio: tuple[Caller, Caller, Caller],
) -> None:
    """Settling a modification is allowed on a held call (spec); it must not resume it."""
    alice, bob, _ = trio
    await connect(alice, bob)
    await alice.phone.hold()
    await bob.phone.upgrade()  # bob's side is connected; alice's call is on hold
    await alice.wait("call:modification-in-progress")
    await alice.phone.accept_modification()
    await alice.wait("call:media-modification")
    call = alice.phone.current_call
    assert call is not None and call.media_type == "video"
    assert call.state == CallState.HELD
    await expect(alice, alice.phone.hold(), "2503", "hold")  # held already
    await alice.phone.resume()  # still a held call: resume works (it was 2603)
    assert call.state == CallState.CONNECTED


async def test_gateway_error_responses_map_as_the_spec_says(
    trio: tuple[Caller, Caller, Caller],
    gateway: GatewayServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """spec/phone-api.md: gateway errors map by status + MessageId (unknown: 1000; bare 5xx:
    500-505); a resource that is gone (bare 404) fails the method (xx00); 502/503 become
    gateway:unreachable and a session that is gone session:expired, instead of error."""
    alice, bob, _ = trio
    for event in ("session:expired", "gateway:unreachable"):
        alice.phone.on(event, alice._record(event))
    await connect(alice, bob)
    call = alice.phone.current_call
    assert call is not None

    async def broken_hold(*_: Any) -> None:
        raise RuntimeError("the switch failed")

    monkeypatch.setattr(gateway.gateway.switch, "hold", broken_hold)
    await expect(alice, alice.phone.hold(), "1000", "hold")  # 500 SVC5000: not in the table
    error = alice.events["error"][-1]
    assert error.http_status_code == 500 and error.message_id == "SVC5000"
    assert call.state == CallState.CONNECTED, "a failed hold holds nothing"
    monkeypatch.undo()

    real = alice.phone.transport.request
    replies: list[Response | Exception] = []

    async def scripted(method: str, path: str, *a: Any, **k: Any) -> Response:
        if replies and method == "PUT" and "/calls/" in path:
            reply = replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return await real(method, path, *a, **k)

    alice.phone.transport.request = scripted  # type: ignore[method-assign]
    replies.append(Response(500, {}, None))  # a bare 500, no RequestError body
    await expect(alice, alice.phone.hold(), "500", "hold")
    replies.append(Response(404, {}, "no call c1 in this session"))  # the call is gone
    await expect(alice, alice.phone.hold(), "2500", "hold")
    assert "session:expired" not in alice.events, "a call that is gone is not the session"

    replies.append(GatewayUnreachable("503 from a proxy"))  # as the transport reports 502/503
    errors = len(alice.events["error"])
    with pytest.raises(PhoneException) as unreachable:
        await alice.phone.hold()
    assert unreachable.value.error.error_code == "2500"
    assert len(alice.events["error"]) == errors, "gateway:unreachable instead of error"
    assert len(alice.events["gateway:unreachable"]) == 1
    assert call.state == CallState.CONNECTED
    async with asyncio.timeout(5):  # the session keeper finds the gateway again at once
        while not alice.phone.online:
            await asyncio.sleep(0.05)
    await alice.phone.hold()
    assert call.state == CallState.HELD

    status, body = request_error("SVC8514", "s1")  # what the gateway says of a lost session
    replies.append(Response(status, {}, body))
    with pytest.raises(PhoneException):
        await alice.phone.resume()
    assert len(alice.events["error"]) == errors, "session:expired instead of error"
    assert len(alice.events["session:expired"]) == 1
