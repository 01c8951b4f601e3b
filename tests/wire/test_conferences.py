"""Conferences through the gateway's mixer: who hears whom, invitations, the wire API.

Three real Phones (aiortc on 127.0.0.1) each send their own sine tone; after every
operation the test measures, per party, the level of every party's frequency in what it
received over the last 0.8 s (Goertzel) and asserts the exact who-hears-whom matrix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import av
import numpy as np
import pytest

from ivrbot.events import Event
from ivrbot.media.frames import pcm_from_frame
from ivrbot.phone.call import CallState, ConferenceCall
from ivrbot.phone.negotiation import Negotiation
from ivrbot.phone.phone import Phone
from ivrbot.phone.publisher import Publisher
from ivrbot.phone.transport import EventSource
from ivrbot.phone.transport_remote import RemoteTransport, fetch_token
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.wire.wire import message_id

pytestmark = pytest.mark.e2e

# Measured on loopback: a party's tone arrives at about -15 dBFS through the mixer and Opus;
# a tone that is not sent to a party measures below -70. The bounds keep a wide margin.
HEARD_DB = -30.0
SILENT_DB = -50.0
FREQS = {"host": 600.0, "p1": 900.0, "p2": 1400.0}
USERS = {
    "host": ("ACCOUNT_ID", "alice@ivrbot.local"),
    "p1": ("VIRTUAL_NUMBER", "vtn:5550001001"),
    "p2": ("ACCOUNT_ID", "bob@ivrbot.local"),
}


class WireTap(RemoteTransport):
    """The remote transport, keeping every event object its channel delivers."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.wire: list[dict[str, Any]] = []

    async def open_events(self, session_path: str) -> EventSource:
        return TappedEvents(await super().open_events(session_path), self.wire)


class TappedEvents:
    def __init__(self, source: EventSource, wire: list[dict[str, Any]]) -> None:
        self.source, self.wire = source, wire

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for obj in self.source:
            self.wire.append(obj)
            yield obj

    async def close(self) -> None:
        await self.source.close()


class Member:
    """A Phone that plays its own tone in every conference, records what it hears, every
    event it gets and every raw event object from its channel."""

    def __init__(self, url: str, name: str, freq: float | None = None) -> None:
        self.name = name
        self.freq = freq or FREQS[name]
        tap = WireTap(url)
        self.phone = Phone(url, name=name, transport=tap)
        self.heard: list[np.ndarray] = []
        self.events: dict[str, list[Any]] = {}
        self.wire = tap.wire
        for event in Event:
            self.phone.on(event.value, self._record(event.value))
        self.phone.on("conference:connected", self._speak)

    def _record(self, event: str) -> Any:
        def handler(payload: Any) -> None:
            self.events.setdefault(event, []).append(payload)

        return handler

    def _speak(self, data: Any) -> None:
        call = next((c for c in self.phone.calls if c.index == data.index), None)
        if call is not None:
            call.play(tone(self.freq))

    def hear(self, frame: av.AudioFrame) -> None:
        self.heard.append(pcm_from_frame(frame))

    async def wait(self, event: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.events.get(event, [])) < count:
                await asyncio.sleep(0.02)
        return self.events[event]

    def count(self, event: str) -> int:
        return len(self.events.get(event, []))

    def wire_events(self, state: str) -> list[dict[str, Any]]:
        return [e for e in self.wire if e.get("type") == "conferences" and e["state"] == state]


_TONES: dict[float, np.ndarray] = {}


def tone(freq: float) -> np.ndarray:
    """A minute of ``freq`` at -12 dBFS, made once (making it takes the loop ~0.1 s)."""
    if freq not in _TONES:
        _TONES[freq] = sine(freq, 60.0, dbfs=-12.0)
    return _TONES[freq]


LEVELS: list[dict[str, dict[str, float]]] = []  # every measurement, for calibration


async def hears(
    parties: list[Member], settle: float = 1.3, freqs: dict[str, float] = FREQS
) -> dict[str, set[str]]:
    """{listener: {names heard, its own included if it hears itself}}.

    A party that stopped receiving audio (no conference any more) hears nobody. A level
    between SILENT_DB and HEARD_DB fails the test: it is neither heard nor silent.
    """
    before = {p.name: len(p.heard) for p in parties}
    await asyncio.sleep(settle)
    out: dict[str, set[str]] = {}
    levels: dict[str, dict[str, float]] = {}
    for p in parties:
        out[p.name] = set()
        if len(p.heard) - before[p.name] < 0.5 * settle / 0.02:
            continue
        window = np.concatenate(p.heard[-40:])
        levels[p.name] = {n: tone_dbfs(window, f) for n, f in freqs.items()}
        for name, db in levels[p.name].items():
            if db > HEARD_DB:
                out[p.name].add(name)
            elif db > SILENT_DB:
                raise AssertionError(f"{p.name} hears {name} at an ambiguous {db:.1f} dBFS")
    LEVELS.append(levels)
    return out


@pytest.fixture
async def trio(gateway: GatewayServer) -> AsyncIterator[tuple[Member, Member, Member]]:
    url = gateway.url
    for freq in FREQS.values():
        tone(freq)
    members = [Member(url, name) for name in FREQS]
    for m in members:
        scope, user = USERS[m.name]
        await m.phone.login(token=await fetch_token(url, scope), user_id=user)
    yield members[0], members[1], members[2]
    for m in members:
        await m.phone.close()


async def start(host: Member) -> ConferenceCall:
    conf = await host.phone.start_conference(remote_media=host.hear)
    await host.wait("conference:connected")
    return conf


async def invite_and_join(host: Member, who: Member, address: str) -> None:
    accepted = host.count("conference:invitation-accepted")
    connected = who.count("conference:connected")
    await host.phone.add_participant(address)
    await who.wait("conference:invitation-received", who.count("conference:joining") + 1)
    await who.phone.join_conference(remote_media=who.hear)
    await who.wait("conference:connected", connected + 1)
    await host.wait("conference:invitation-accepted", accepted + 1)


async def test_who_hears_whom_through_the_mixer(
    trio: tuple[Member, Member, Member], gateway: GatewayServer
) -> None:
    host, p1, p2 = trio
    conf = await start(host)
    assert await hears([host]) == {"host": set()}, "alone, the host hears nobody (not itself)"

    await invite_and_join(host, p1, "5550001001")
    invitation = p1.events["conference:invitation-received"][0]
    assert invitation["from"] == "sip:alice@ivrbot.local"
    assert await hears([host, p1, p2]) == {"host": {"p1"}, "p1": {"host"}, "p2": set()}

    await invite_and_join(host, p2, "bob@ivrbot.local")
    everyone = {"host": {"p1", "p2"}, "p1": {"host", "p2"}, "p2": {"host", "p1"}}
    assert await hears([host, p1, p2]) == everyone
    assert host.phone.get_participants() == {
        "tel:+5550001001": {"participant": "tel:+5550001001", "status": "joined"},
        "sip:bob@ivrbot.local": {"participant": "sip:bob@ivrbot.local", "status": "joined"},
    }
    accepted = host.events["conference:invitation-accepted"][-1].to_dict()
    assert accepted["callType"] == "conference"
    assert accepted["invitee"] == "sip:bob@ivrbot.local"
    assert set(accepted["participants"]) == {"tel:+5550001001", "sip:bob@ivrbot.local"}
    assert accepted["invitations"]["sip:bob@ivrbot.local"]["status"] == "accepted"
    assert len(gateway.gateway.conferences.conferences) == 1

    await host.phone.hold()
    assert conf.state == CallState.HELD and host.count("conference:held") == 1
    assert await hears([host, p1, p2]) == {"host": set(), "p1": {"p2"}, "p2": {"p1"}}

    await host.phone.resume()
    assert conf.state == CallState.CONNECTED and host.count("conference:resumed") == 1
    assert await hears([host, p1, p2]) == everyone

    await host.phone.remove_participant("5550001001")
    ended = await p1.wait("conference:ended")
    assert ended[0].get("message") == "Removed from conference"
    removed = await host.wait("conference:participant-removed")
    assert removed[0].get("participant") == "tel:+5550001001"
    assert await hears([host, p1, p2]) == {"host": {"p2"}, "p1": set(), "p2": {"host"}}
    assert list(host.phone.get_participants()) == ["sip:bob@ivrbot.local"]

    await host.phone.end_conference()
    assert host.count("conference:disconnecting") == 1 and host.count("conference:ended") == 1
    ended = await p2.wait("conference:ended")
    assert ended[0].get("message") == "Conference ended"
    assert await hears([host, p1, p2]) == {"host": set(), "p1": set(), "p2": set()}
    conferences = gateway.gateway.conferences
    assert conferences.conferences == {} and conferences.legs == {}
    assert all(not m.phone.calls for m in trio)
    print("levels (dBFS) per measurement:", LEVELS)

    # the exact wire objects each side received
    (opened,) = host.wire_events("session-open")
    assert set(opened) == {"type", "state", "resourceURL", "sdp"}
    assert opened["resourceURL"] == f"{host.phone.session_path}/conferences/{conf.id}"
    # an invitation accepted: mod-terminated, success, the invitation's modId
    joined = [e for e in host.wire_events("mod-terminated") if e.get("participant")][:2]
    assert [(e["participant"], e["status"], e["reason"]) for e in joined] == [
        ("tel:+5550001001", "joined", "success"),
        ("sip:bob@ivrbot.local", "joined", "success"),
    ]
    assert all(
        set(e) == {"type", "state", "resourceURL", "modId", "reason", "participant", "status"}
        for e in joined
    )
    removal = host.wire_events("session-modified")[0]
    assert removal["status"] == "removed" and removal["participant"] == "tel:+5550001001"
    (invited,) = p1.wire_events("invitation-received")
    assert set(invited) == {"type", "state", "resourceURL", "from", "to", "sdp"}
    assert invited["to"] == "tel:+5550001001"
    assert invited["resourceURL"].startswith(f"{p1.phone.session_path}/conferences/")
    assert p1.wire_events("session-open") == [
        {"type": "conferences", "state": "session-open", "resourceURL": invited["resourceURL"]}
    ]
    assert p1.wire_events("session-terminated")[0]["reason"] == "Removed from conference"


async def test_reject_and_unknown_invitee(trio: tuple[Member, Member, Member]) -> None:
    host, p1, _ = trio
    await start(host)
    await host.phone.add_participant("5550001001")
    await p1.wait("conference:invitation-received")
    assert host.phone.get_participants() == {
        "tel:+5550001001": {"participant": "tel:+5550001001", "status": "invited"}
    }
    await p1.phone.reject_conference()
    assert p1.count("conference:invitation-rejected") == 1 and not p1.phone.calls
    rejected = await host.wait("conference:invitation-rejected")
    assert rejected[0].get("message") == "User busy"
    assert rejected[0].get("invitations")["tel:+5550001001"]["status"] == "rejected"
    assert host.phone.get_participants() == {}
    (wire,) = host.wire_events("mod-terminated")
    assert set(wire) == {"type", "state", "resourceURL", "modId", "participant", "reason"}

    await host.phone.add_participant("5550001099")  # nobody is logged in as that number
    rejected = await host.wait("conference:invitation-rejected", 2)
    assert rejected[1].get("message") == "User not found"

    # invited again after a rejection: a new invitation, withdrawn before an answer
    await host.phone.add_participant("5550001001")
    await p1.wait("conference:invitation-received", 2)
    await host.phone.remove_participant("tel:+5550001001")
    canceled = await p1.wait("conference:canceled")
    assert canceled[0].get("message") == "Call canceled"
    removed = await host.wait("conference:participant-removed")
    assert removed[0].get("message") == "Call canceled"
    assert host.phone.get_participants() == {}


async def test_every_session_of_the_invitee_is_invited(
    trio: tuple[Member, Member, Member], gateway: GatewayServer
) -> None:
    host, _, bob = trio
    bob2 = Member(gateway.url, "p2")  # bob logged in a second time (another device)
    scope, user = USERS["p2"]
    await bob2.phone.login(token=await fetch_token(gateway.url, scope), user_id=user)
    try:
        await start(host)
        await host.phone.add_participant("bob@ivrbot.local")
        await bob.wait("conference:invitation-received")
        await bob2.wait("conference:invitation-received")
        await bob.phone.join_conference(remote_media=bob.hear)
        canceled = await bob2.wait("conference:canceled")
        assert canceled[0].get("message") == "Call answered elsewhere"
        await bob.wait("conference:connected")
        await host.wait("conference:invitation-accepted")
        await host.phone.remove_participant("bob@ivrbot.local")
        await bob.wait("conference:ended")

        await host.phone.add_participant("bob@ivrbot.local")
        await bob.wait("conference:invitation-received", 2)
        await bob2.wait("conference:invitation-received", 2)
        await bob.phone.reject_conference()
        await asyncio.sleep(0.3)
        assert host.count("conference:invitation-rejected") == 0, "bob2 still rings"
        await bob2.phone.reject_conference()
        rejected = await host.wait("conference:invitation-rejected")
        assert rejected[0].get("message") == "User busy"
        (conference,) = gateway.gateway.conferences.conferences.values()
        assert conference.participants == {} and len(gateway.gateway.conferences.legs) == 1
    finally:
        await bob2.phone.close()


async def test_participant_leaves_and_host_logout_ends_it(
    trio: tuple[Member, Member, Member], gateway: GatewayServer
) -> None:
    host, p1, p2 = trio
    await start(host)
    await invite_and_join(host, p1, "5550001001")
    await invite_and_join(host, p2, "bob@ivrbot.local")
    await p1.phone.end_conference()
    assert p1.count("conference:ended") == 1 and not p1.phone.calls
    left = await host.wait("conference:participant-removed")
    assert left[0].get("participant") == "tel:+5550001001"
    assert left[0].get("message") == "Call terminated"
    assert list(host.phone.get_participants()) == ["sip:bob@ivrbot.local"]

    await host.phone.logout()
    ended = await p2.wait("conference:ended")
    assert ended[0].get("message") == "Conference ended"
    assert gateway.gateway.conferences.conferences == {}
    assert gateway.gateway.conferences.legs == {}


async def test_a_participant_that_vanishes_leaves_the_conference(
    trio: tuple[Member, Member, Member], gateway: GatewayServer
) -> None:
    host, p1, _ = trio
    await start(host)
    await invite_and_join(host, p1, "5550001001")
    call = p1.phone.calls[0]
    await call.close_media()  # the endpoint dies without a word (its DTLS closes)
    left = await host.wait("conference:participant-removed")
    assert left[0].get("message") == "Media failed"
    assert list(gateway.gateway.conferences.legs) == [host.phone.calls[0].id]


# the wire API: errors ------------------------------------------------------------------------
class Wire:
    """Raw HTTP as one Phone's session (its token), to send what a Phone never would."""

    def __init__(self, url: str, member: Member) -> None:
        self.url = url
        self.token = member.phone.transport.token
        self.session = member.phone.session_path

    async def send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        kw: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.url + path, headers=all_headers, **kw) as resp,
        ):
            text = await resp.text()
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, text


async def test_wire_errors_are_4xx_never_500(
    trio: tuple[Member, Member, Member], gateway: GatewayServer
) -> None:
    host, p1, _ = trio
    conf = await start(host)
    await host.phone.add_participant("5550001001")
    await p1.wait("conference:invitation-received")
    as_host, as_p1 = Wire(gateway.url, host), Wire(gateway.url, p1)
    conf_path = f"{host.phone.session_path}/conferences/{conf.id}"
    invite_path = p1.wire_events("invitation-received")[0]["resourceURL"]
    p1_cid = invite_path.rsplit("/", 1)[-1]

    # another session's conference: 404, whichever session id the path names
    mine, theirs = host.phone.session_path, p1.phone.session_path
    for who, method, path in (
        (as_p1, "DELETE", conf_path),
        (as_p1, "PUT", conf_path + "/participants/sip:eve@x"),
        (as_p1, "PUT", f"{theirs}/conferences/{conf.id}"),
        (as_p1, "DELETE", f"{theirs}/conferences/{conf.id}"),
        (as_p1, "DELETE", f"{theirs}/conferences/{conf.id}/participants/sip:eve@x"),
        (as_host, "DELETE", f"{mine}/conferences/{p1_cid}"),
        (as_host, "PUT", f"{mine}/conferences/nope"),
    ):
        assert (await who.send(method, path))[0] == 404, (method, path)

    # participant ids: sip:user@domain or tel:+digits
    for bad in ("bob", "sip:bob", "sip:a@b@c", "sip:@x", "tel:5550001001", "tel:+12ab", "x:y@z"):
        status, body = await as_host.send("PUT", f"{conf_path}/participants/{bad}")
        assert status == 400 and message_id(body) == "SVC0004", bad
        status, body = await as_host.send("DELETE", f"{conf_path}/participants/{bad}")
        assert status == 400 and message_id(body) == "SVC0004", bad
    status, listing = await as_host.send("GET", f"{conf_path}/participants")
    assert status == 200
    assert listing == {
        "participants": {"tel:+5550001001": {"participant": "tel:+5550001001", "status": "invited"}}
    }
    assert (await as_p1.send("GET", f"{invite_path}/participants"))[0] == 200
    assert (await as_p1.send("GET", f"{conf_path}/participants"))[0] == 404
    status, _ = await as_host.send("DELETE", f"{conf_path}/participants/sip:eve@x")
    assert status == 404  # not a participant
    status, body = await as_host.send("PUT", f"{conf_path}/participants/tel:+5550001001")
    assert status == 409 and message_id(body) == "SVC8501"  # already invited

    # bodies and headers
    sessions = f"{host.phone.session_path}/conferences"
    for body in ({}, {"conference": "x"}, {"conference": {}}, {"conference": {"sdp": 5}}):
        status, reply = await as_host.send("POST", sessions, body)
        assert status == 400 and message_id(reply) == "SVC0002", body
    status, reply = await as_host.send("POST", sessions, "{not json")
    assert status == 400 and message_id(reply) == "SVC0002"
    status, reply = await as_host.send("POST", sessions, {"conference": {"sdp": "v=0\r\nbad"}})
    assert status == 400 and message_id(reply) == "SVC0002"
    status, reply = await as_host.send("PUT", conf_path, {}, {"x-conference-action": "dance"})
    assert status == 400 and message_id(reply) == "SVC0003"
    status, reply = await as_host.send("DELETE", conf_path, None, {"x-delete-reason": "bye"})
    assert status == 400 and message_id(reply) == "SVC0003"
    answer = {"x-conference-action": "call-answer"}
    status, reply = await as_p1.send("PUT", invite_path, {}, answer)
    assert status == 400 and message_id(reply) == "SVC0002"
    bad_sdp = {"conferenceModifications": {"sdp": "v=0\r\nbad"}}
    status, reply = await as_p1.send("PUT", invite_path, bad_sdp, answer)
    assert status == 400 and message_id(reply) == "SVC0002"

    # actions the state does not allow: 409
    status, reply = await as_host.send("PUT", conf_path, bad_sdp, answer)
    assert status == 409 and message_id(reply) == "SVC8501"  # the host has nothing to answer
    status, reply = await as_host.send(
        "PUT", conf_path, {}, {"x-conference-action": "initiate-resume"}
    )
    assert status == 409 and message_id(reply) == "SVC8501"  # not held
    status, reply = await as_host.send("DELETE", conf_path, None, {"x-delete-reason": "reject"})
    assert status == 409 and message_id(reply) == "SVC8501"
    status, reply = await as_p1.send("PUT", f"{invite_path}/participants/sip:eve@x")
    assert status == 409 and message_id(reply) == "SVC8501"  # only the host invites
    status, reply = await as_p1.send(
        "PUT", invite_path, {}, {"x-conference-action": "initiate-hold"}
    )
    assert status == 409 and message_id(reply) == "SVC8501"  # not joined yet

    # the conference is still usable after all that
    assert (await as_p1.send("DELETE", invite_path, None, {"x-delete-reason": "reject"}))[0] == 204
    rejected = await host.wait("conference:invitation-rejected")
    assert rejected[0].get("message") == "User busy"
    assert (await as_host.send("DELETE", conf_path))[0] == 204
    assert gateway.gateway.conferences.conferences == {}


async def test_location_and_headers(trio: tuple[Member, Member, Member]) -> None:
    host, p1, _ = trio
    conf = await start(host)
    transport = host.phone.transport
    path = f"{host.phone.session_path}/conferences/{conf.id}"
    resp = await transport.request("PUT", f"{path}/participants/tel:+15550001001", {})
    assert resp.status == 202
    assert resp.headers["x-state"] == "add-pending" and resp.headers["x-modId"]
    await p1.wait("conference:invitation-received")  # tel:+1 555... reaches vtn:5550001001
    resp = await transport.request("DELETE", f"{path}/participants/tel:+15550001001")
    assert resp.status == 202 and resp.headers["x-state"] == "remove-pending"
    await p1.wait("conference:canceled")
    offer_phone = Phone(transport.base_url, name="raw")
    try:
        call = ConferenceCall(offer_phone, 1, "outgoing", "", True)
        body = {"conference": await Negotiation(Publisher("raw")).offer(call)}
        resp = await transport.request("POST", f"{host.phone.session_path}/conferences", body)
        assert resp.status == 201 and resp.headers["x-state"] == "created"
        location = resp.headers["Location"]
        parts = location.split("/")
        assert location.startswith("/RTC/v1/sessions/") and parts[5] == "conferences"
        assert parts[4] == host.phone.session_id and len(parts) == 7
        await call.close_media()
    finally:
        await offer_phone.close()
