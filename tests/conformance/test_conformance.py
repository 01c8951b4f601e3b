"""Conformance: every row of spec/rtc-api.md "Event sequences a historical client depends on".

Each test drives the gateway with tests/conformance/client.py (raw HTTP, one event channel,
aiortc; not the Phone), checks the exact events of every resource it touches (state and
fields, SDP directions) and, after every step, who hears whom: each peer sends its own
sine and the test measures every frequency at every other peer (Goertzel). Every test runs
over both event channels: the long-poll and the WebSocket.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from ivrbot.media.tones import RINGBACK_HZ
from ivrbot.wire.server import GatewayServer
from tests.conformance.client import RTC, Client, Peer, sdp_direction

HEARD_DB = -30.0  # a sent tone arrives near -15 dBFS through Opus on loopback
SILENT_DB = -50.0  # one that is not sent measures below -70

ALICE = ("ACCOUNT_ID", "alice@ivrbot.local")
BOB = ("VIRTUAL_NUMBER", "vtn:5550001000")
CAROL = ("ACCOUNT_ID", "carol@ivrbot.local")
FREQ = {"alice": 700.0, "bob": 1100.0, "carol": 1500.0, "alice2": 1900.0}

Channel = str
pytestmark = pytest.mark.parametrize("channel", ["longpoll", "websocket"])


@pytest.fixture
async def clients(gateway: GatewayServer) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    made: list[Client] = []

    async def make(who: tuple[str, str], channel: Channel) -> Client:
        client = Client(gateway.url, channel)
        made.append(client)
        await client.login(*who)
        return client

    yield make
    for client in made:
        await client.close()


async def who_hears_whom(expect: dict[tuple[Peer, Peer], bool], timeout: float = 6.0) -> None:
    """``{(listener, speaker): heard}`` must hold (after a settle, within ``timeout``)."""
    await asyncio.sleep(1.0)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        levels = {k: k[0].level(k[1].freq) for k in expect}
        wrong = {
            f"{k[0].freq:.0f}<-{k[1].freq:.0f}": round(db, 1)
            for k, db in levels.items()
            if (db < HEARD_DB if expect[k] else db > SILENT_DB)
        }
        if not wrong:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"who hears whom is wrong (listener<-speaker: dBFS): {wrong}")
        await asyncio.sleep(0.3)


async def both_ways(a: Peer, b: Peer) -> None:
    await who_hears_whom({(a, b): True, (b, a): True})


def location_id(reply: Any, kind: str, session: str) -> str:
    location = reply.headers["Location"]
    # a path, the id as segment 6 (the historical client splits the header on '/')
    assert re.fullmatch(rf"{session}/{kind}/[^/]+", location), location
    return str(location)


def assert_json_error(reply: Any, status: int) -> None:
    assert reply.status == status, reply
    assert reply.headers["Content-Type"].startswith("application/json"), reply
    assert reply.message_id, reply


async def dial(caller: Client, callee: Client, peer: Peer) -> tuple[str, dict[str, Any]]:
    """``POST .../calls`` with ``peer``'s offer; returns the call's path and the callee's
    invitation."""
    body = {"call": {"calledParty": "tel:+15550001000", "sdp": await peer.offer()}}
    reply = await caller.request("POST", f"{caller.session}/calls", body)
    assert reply.status == 201, reply
    call = location_id(reply, "calls", caller.session)
    invite = await callee.invitation()
    return call, invite


async def connected_call(
    alice: Client, bob: Client
) -> tuple[str, str, Peer, Peer]:  # (alice's call, bob's call, alice's peer, bob's peer)
    """Alice calls Bob (early media) and Bob answers: the first two table rows."""
    a, b = alice.peer(FREQ["alice"]), bob.peer(FREQ["bob"])
    call_a, invite = await dial(alice, bob, a)
    opened = await alice.next_event(call_a)
    assert opened["state"] == "session-open" and opened["provisionalSDP"] is True, opened
    assert opened["type"] == "calls" and sdp_direction(opened["sdp"]) == "sendrecv"
    await a.apply_answer(opened["sdp"])
    call_b = invite["resourceURL"]
    assert invite["from"] == "sip:alice@ivrbot.local" and invite["type"] == "calls", invite
    answer = {"callsMediaModifications": {"sdp": await b.answer(invite["sdp"])}}
    reply = await bob.request("PUT", call_b, answer, {"x-calls-action": "call-answer"})
    assert reply.status in (200, 204), reply
    assert (await bob.next_event(call_b))["state"] == "session-open"
    modified = await alice.next_event(call_a)
    assert modified["state"] == "session-modified" and "sdp" not in modified, modified
    await both_ways(a, b)
    return call_a, call_b, a, b


# rows: early media, answer, incoming call, hang-up on both sides ----------------------------
@pytest.mark.e2e
async def test_early_media_answer_and_hangup(channel: Channel, clients: Any) -> None:
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    a, b = alice.peer(FREQ["alice"]), bob.peer(FREQ["bob"])
    call_a, invite = await dial(alice, bob, a)
    opened = await alice.next_event(call_a)
    assert opened["state"] == "session-open" and opened["provisionalSDP"] is True
    assert sdp_direction(opened["sdp"]) == "sendrecv" and "a=setup:" in opened["sdp"]
    await a.apply_answer(opened["sdp"])
    # the answer is applied: ringback is heard while the callee rings
    async with asyncio.timeout(8):
        while a.level(RINGBACK_HZ[0], 0.4) < HEARD_DB:
            await asyncio.sleep(0.1)
    await alice.nothing_more(call_a)  # still connecting
    call_b = invite["resourceURL"]
    answer = {"callsMediaModifications": {"sdp": await b.answer(invite["sdp"])}}
    reply = await bob.request("PUT", call_b, answer, {"x-calls-action": "call-answer"})
    assert reply.status in (200, 204), reply
    assert (await bob.next_event(call_b))["state"] == "session-open"
    modified = await alice.next_event(call_a)
    assert modified["state"] == "session-modified" and "sdp" not in modified, modified
    await both_ways(a, b)
    # the caller hangs up: it gets session-terminated too, without a reason
    reply = await alice.request("DELETE", call_a, headers={"x-delete-reason": "terminate"})
    assert reply.status == 204, reply
    mine = await alice.next_event(call_a)
    assert mine["state"] == "session-terminated" and "reason" not in mine, mine
    theirs = await bob.next_event(call_b)
    assert theirs["state"] == "session-terminated" and theirs["reason"] == "Call terminated"
    await who_hears_whom({(a, b): False, (b, a): False})
    # a second DELETE: a JSON 404 (not a plain-text one, which means "session expired")
    again = await alice.request("DELETE", call_a, headers={"x-delete-reason": "terminate"})
    assert_json_error(again, 404)
    assert again.message_id != "SVC8514"
    await alice.nothing_more(call_a)
    await bob.nothing_more(call_b)


@pytest.mark.e2e
async def test_no_early_media_and_callee_hangs_up(
    channel: Channel, clients: Any, gateway: GatewayServer
) -> None:
    gateway.gateway.switch.early_media = False
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    a, b = alice.peer(FREQ["alice"]), bob.peer(FREQ["bob"])
    call_a, invite = await dial(alice, bob, a)
    await alice.nothing_more(call_a, wait=0.5)  # no answer before the callee answers
    call_b = invite["resourceURL"]
    answer = {"callsMediaModifications": {"sdp": await b.answer(invite["sdp"])}}
    reply = await bob.request("PUT", call_b, answer, {"x-calls-action": "call-answer"})
    assert reply.status in (200, 204), reply
    opened = await alice.next_event(call_a)
    assert opened["state"] == "session-open" and "provisionalSDP" not in opened, opened
    assert sdp_direction(opened["sdp"]) == "sendrecv"
    await a.apply_answer(opened["sdp"])
    assert (await bob.next_event(call_b))["state"] == "session-open"
    await both_ways(a, b)
    await alice.nothing_more(call_a)
    # the callee hangs up
    reply = await bob.request("DELETE", call_b, headers={"x-delete-reason": "terminate"})
    assert reply.status == 204, reply
    mine = await bob.next_event(call_b)
    assert mine["state"] == "session-terminated" and "reason" not in mine, mine
    theirs = await alice.next_event(call_a)
    assert theirs["state"] == "session-terminated" and theirs["reason"] == "Call terminated"
    await who_hears_whom({(a, b): False, (b, a): False})


@pytest.mark.e2e
async def test_cancel_and_reject(channel: Channel, clients: Any) -> None:
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    # cancel: the caller gives up while it rings
    a = alice.peer(FREQ["alice"])
    call_a, invite = await dial(alice, bob, a)
    assert (await alice.next_event(call_a))["state"] == "session-open"
    reply = await alice.request("DELETE", call_a, headers={"x-delete-reason": "cancel"})
    assert reply.status == 204, reply
    mine = await alice.next_event(call_a)
    assert mine["state"] == "session-terminated" and "reason" not in mine, mine
    theirs = await bob.next_event(invite["resourceURL"])
    assert theirs["state"] == "session-terminated" and theirs["reason"] == "Call canceled"
    # reject: the callee declines
    a2 = alice.peer(FREQ["alice"])
    call_a2, invite2 = await dial(alice, bob, a2)
    assert (await alice.next_event(call_a2))["state"] == "session-open"
    reply = await bob.request(
        "DELETE", invite2["resourceURL"], headers={"x-delete-reason": "reject"}
    )
    assert reply.status == 204, reply
    mine = await bob.next_event(invite2["resourceURL"])
    assert mine["state"] == "session-terminated" and "reason" not in mine, mine
    theirs = await alice.next_event(call_a2)
    assert theirs["state"] == "session-terminated" and theirs["reason"] == "User busy"
    await alice.nothing_more(call_a2)


# rows: hold / resume (either side) ---------------------------------------------------------
async def hold_or_resume(client: Client, call: str, peer: Peer, hold: bool) -> None:
    action = "initiate-call-hold" if hold else "initiate-call-resume"
    offer = await peer.offer("sendonly" if hold else "sendrecv")
    assert sdp_direction(offer) == ("sendonly" if hold else "sendrecv")
    body = {"callsMediaModifications": {"sdp": offer}}
    reply = await client.request("PUT", call, body, {"x-calls-action": action})
    assert reply.status in (200, 204), reply
    done = await client.next_event(call)
    assert done["state"] == "mod-terminated" and done["reason"] == "success", done
    assert done["modId"] and done["modId"] == reply.headers.get("x-modId", done["modId"])
    assert sdp_direction(done["sdp"]) == ("recvonly" if hold else "sendrecv"), done["sdp"]
    await peer.apply_answer(done["sdp"])


@pytest.mark.e2e
async def test_hold_and_resume(channel: Channel, clients: Any, gateway: GatewayServer) -> None:
    gateway.gateway.switch.hold_audio = "silence"
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    call_a, call_b, a, b = await connected_call(alice, bob)
    for client, call, peer in ((alice, call_a, a), (bob, call_b, b)):  # caller, then callee
        await hold_or_resume(client, call, peer, hold=True)
        await who_hears_whom({(a, b): False, (b, a): False})
        await hold_or_resume(client, call, peer, hold=False)
        await both_ways(a, b)
    await alice.nothing_more(call_a)
    await bob.nothing_more(call_b)


# rows: upgrade / downgrade, and a modification received ------------------------------------
async def modify(
    initiator: tuple[Client, str, Peer], other: tuple[Client, str, Peer], kind: str
) -> None:
    (client, call, peer), (far, far_call, far_peer) = initiator, other
    body = {"callsMediaModifications": {"type": kind, "sdp": await peer.offer()}}
    reply = await client.request("PUT", call, body, {"x-calls-action": "initiate-call-mod"})
    assert reply.status in (200, 204), reply
    mod_id = reply.headers["x-modId"]
    received = await far.next_event(far_call)
    assert received["state"] == "mod-received" and received["modId"] == mod_id, received
    assert sdp_direction(received["sdp"]) == "sendrecv"
    answer = {"callsMediaModifications": {"sdp": await far_peer.answer(received["sdp"])}}
    headers = {"x-calls-action": "accept-call-mod", "x-modId": mod_id}
    reply = await far.request("PUT", far_call, answer, headers)
    assert reply.status in (200, 204), reply
    settled = await far.next_event(far_call)
    assert settled["state"] == "mod-terminated" and settled["reason"] == "success", settled
    assert settled["modId"] == mod_id and "sdp" not in settled, settled
    done = await client.next_event(call)
    assert done["state"] == "mod-terminated" and done["reason"] == "success", done
    assert done["modId"] == mod_id and sdp_direction(done["sdp"]) == "sendrecv", done
    await peer.apply_answer(done["sdp"])


@pytest.mark.e2e
async def test_upgrade_downgrade_and_mod_received(channel: Channel, clients: Any) -> None:
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    call_a, call_b, a, b = await connected_call(alice, bob)
    await modify((alice, call_a, a), (bob, call_b, b), "upgrade")
    await both_ways(a, b)
    await modify((bob, call_b, b), (alice, call_a, a), "downgrade")
    await both_ways(a, b)
    await alice.nothing_more(call_a)
    await bob.nothing_more(call_b)


# second call, transfer and move -------------------------------------------------------------
@pytest.mark.e2e
async def test_second_call_and_transfer(
    channel: Channel, clients: Any, gateway: GatewayServer
) -> None:
    gateway.gateway.switch.hold_audio = "silence"
    bob, alice = await clients(BOB, channel), await clients(ALICE, channel)
    carol = await clients(CAROL, channel)
    call_a, call_b, a, b = await connected_call(alice, bob)
    await hold_or_resume(alice, call_a, a, hold=True)
    # the second call, to carol (hold first, then dial)
    a2, c = alice.peer(FREQ["alice2"]), carol.peer(FREQ["carol"])
    body = {"call": {"calledParty": "sip:carol@ivrbot.local", "sdp": await a2.offer()}}
    reply = await alice.request("POST", f"{alice.session}/calls", body)
    assert reply.status == 201, reply
    call_a2 = location_id(reply, "calls", alice.session)
    opened = await alice.next_event(call_a2)
    assert opened["state"] == "session-open" and opened["provisionalSDP"] is True
    await a2.apply_answer(opened["sdp"])
    invite = await carol.invitation()
    call_c = invite["resourceURL"]
    answer = {"callsMediaModifications": {"sdp": await c.answer(invite["sdp"])}}
    reply = await carol.request("PUT", call_c, answer, {"x-calls-action": "call-answer"})
    assert reply.status in (200, 204)
    assert (await carol.next_event(call_c))["state"] == "session-open"
    assert (await alice.next_event(call_a2))["state"] == "session-modified"
    await who_hears_whom(
        {(a2, c): True, (c, a2): True, (b, a): False, (a, b): False, (b, c): False}
    )
    # transfer: bob and carol talk, alice leaves both calls
    target = call_a.rsplit("/", 1)[-1]  # the held call's id
    headers = {"x-calls-action": "initiate-call-transfer", "x-transferTargetCallId": target}
    reply = await alice.request("PUT", call_a2, {}, headers)
    assert reply.status in (200, 204), reply
    initiated = await alice.next_event(call_a2)
    assert initiated["state"] == "transfer-initiated", initiated
    done = await alice.next_event(call_a2)
    assert done["state"] == "transfer-terminated" and done["reason"] == "success", done
    for call in (call_a2, call_a):
        ended = await alice.next_event(call)
        assert ended["state"] == "session-terminated", ended
    for client, call, peer_uri in (
        (bob, call_b, "sip:carol@ivrbot.local"),
        (carol, call_c, "tel:+15550001000"),
    ):
        changed = await client.next_event(call)
        assert changed["state"] == "session-modified" and changed["from"] == peer_uri, changed
    await who_hears_whom({(b, c): True, (c, b): True, (a, b): False, (a2, c): False})
    for client, call in ((alice, call_a), (alice, call_a2), (bob, call_b), (carol, call_c)):
        await client.nothing_more(call)


@pytest.mark.e2e
async def test_move(channel: Channel, clients: Any) -> None:
    alice, bob = await clients(ALICE, channel), await clients(BOB, channel)
    alice2 = await clients(ALICE, channel)  # the same identity, logged in elsewhere
    call_a, call_b, a, b = await connected_call(alice, bob)
    reply = await alice.request("PUT", call_a, {}, {"x-calls-action": "initiate-call-move"})
    assert reply.status in (200, 204), reply
    invite = await alice2.invitation()
    assert invite["from"] == "tel:+15550001000", invite
    a2 = alice2.peer(FREQ["alice2"])
    call_a2 = invite["resourceURL"]
    answer = {"callsMediaModifications": {"sdp": await a2.answer(invite["sdp"])}}
    reply = await alice2.request("PUT", call_a2, answer, {"x-calls-action": "call-answer"})
    assert reply.status in (200, 204), reply
    assert (await alice2.next_event(call_a2))["state"] == "session-open"
    moved = await alice.next_event(call_a)
    assert moved["state"] == "move-terminated" and moved["reason"] == "moved", moved
    ended = await alice.next_event(call_a)
    assert ended["state"] == "session-terminated", ended
    await who_hears_whom({(a2, b): True, (b, a2): True, (b, a): False, (a, b): False})
    for client, call in ((alice, call_a), (alice2, call_a2), (bob, call_b)):
        await client.nothing_more(call)


# conferences: participants accepted / rejected, hold, end -----------------------------------
@pytest.mark.e2e
async def test_conference(channel: Channel, clients: Any) -> None:
    host, bob = await clients(ALICE, channel), await clients(BOB, channel)
    carol = await clients(CAROL, channel)
    h, b = host.peer(FREQ["alice"]), bob.peer(FREQ["bob"])
    body = {"conference": {"sdp": await h.offer()}}
    reply = await host.request("POST", f"{host.session}/conferences", body)
    assert reply.status == 201, reply
    conf = location_id(reply, "conferences", host.session)
    opened = await host.next_event(conf)
    assert opened["state"] == "session-open" and opened["type"] == "conferences", opened
    assert sdp_direction(opened["sdp"]) == "sendrecv"
    await h.apply_answer(opened["sdp"])
    # an invitee joins: the host gets mod-terminated with the invitation's modId
    reply = await host.request("PUT", f"{conf}/participants/tel:+15550001000", {})
    assert reply.status in (200, 201, 202, 204) and reply.headers["x-state"] == "add-pending"
    mod_id = reply.headers["x-modId"]
    invite = await bob.invitation("conferences")
    assert invite["from"] == "sip:alice@ivrbot.local", invite
    conf_b = invite["resourceURL"]
    answer = {"conferenceModifications": {"sdp": await b.answer(invite["sdp"])}}
    reply = await bob.request("PUT", conf_b, answer, {"x-conference-action": "call-answer"})
    assert reply.status in (200, 204), reply
    assert (await bob.next_event(conf_b))["state"] == "session-open"
    joined = await host.next_event(conf)
    assert joined["state"] == "mod-terminated" and joined["type"] == "conferences", joined
    assert joined["reason"] == "success" and joined["modId"] == mod_id, joined
    await both_ways(h, b)
    # an invitee rejects: "User busy" with that invitation's modId
    reply = await host.request("PUT", f"{conf}/participants/sip:carol@ivrbot.local", {})
    carol_mod = reply.headers["x-modId"]
    invite = await carol.invitation("conferences")
    reply = await carol.request(
        "DELETE", invite["resourceURL"], headers={"x-delete-reason": "reject"}
    )
    assert reply.status == 204, reply
    declined = await carol.next_event(invite["resourceURL"])
    assert declined["state"] == "session-terminated" and "reason" not in declined, declined
    rejected = await host.next_event(conf)
    assert rejected["state"] == "mod-terminated" and rejected["reason"] == "User busy"
    assert rejected["modId"] == carol_mod, rejected
    # a member holds and resumes with an offer: the answer comes in mod-terminated
    for hold in (True, False):
        offer = await b.offer("sendonly" if hold else "sendrecv")
        action = "initiate-hold" if hold else "initiate-resume"
        body = {"conferenceModifications": {"sdp": offer}}
        reply = await bob.request("PUT", conf_b, body, {"x-conference-action": action})
        assert reply.status in (200, 204), reply
        done = await bob.next_event(conf_b)
        assert done["state"] == "mod-terminated" and done["reason"] == "success", done
        assert sdp_direction(done["sdp"]) == ("recvonly" if hold else "sendrecv")
        await b.apply_answer(done["sdp"])
        if hold:
            await who_hears_whom({(h, b): False, (b, h): False})
        else:
            await both_ways(h, b)
    # the host ends it: session-terminated for the host too
    reply = await host.request("DELETE", conf, headers={"x-delete-reason": "terminate"})
    assert reply.status == 204, reply
    ended = await host.next_event(conf)
    assert ended["state"] == "session-terminated", ended
    gone = await bob.next_event(conf_b)
    assert gone["state"] == "session-terminated" and gone["reason"] == "Conference ended"
    await who_hears_whom({(h, b): False, (b, h): False})
    await host.nothing_more(conf)
    await bob.nothing_more(conf_b)


# errors -----------------------------------------------------------------------------------------
@pytest.mark.contract
async def test_every_error_is_a_json_request_error(channel: Channel, clients: Any) -> None:
    alice = await clients(ALICE, channel)
    assert_json_error(await alice.request("GET", f"{RTC}/no/such/path"), 404)
    assert_json_error(await alice.request("GET", "/nothing-here"), 404)
    assert_json_error(await alice.request("PUT", f"{alice.session}/calls/nope", {}), 404)
    assert_json_error(await alice.request("DELETE", f"{alice.session}/conferences/nope"), 404)
    reply = await alice.request("PATCH", alice.session, {})
    assert_json_error(reply, 405)
    assert "Allow" in reply.headers
    assert_json_error(await alice.request("POST", f"{alice.session}/calls", {"x": 1}), 400)
    gone = await alice.request("PUT", f"{RTC}/sessions/unknown", {})
    assert_json_error(gone, 404)
    assert gone.message_id == "SVC8514"  # an unknown session: the client's "expired"
    assert_json_error(await alice.request("GET", alice.session + "/events", auth=False), 401)
