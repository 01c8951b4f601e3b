"""The Phone's parts over a scripted gateway (unit tests: no gateway, in-process media).

- the Phone is one facade over parts, with the spec's methods;
- Negotiation: which media a call gets from its first SDP, offers kept until answered;
- Lines: hold and resume of a call and of a conference are one path (the kind's resource,
  header and body key), the held call comes back when the call in front ends, the far
  end's reasons end a call and a conference as each should, background calls are marked;
- Session: logout ends the calls first; an expired session ends them.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from ivrbot.endpoints.local.local_link import LocalLink
from ivrbot.phone.call import Call, CallState, ConferenceCall
from ivrbot.phone.media import LocalMedia
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import Response
from tests.phone.fake_transport import FakeTransport

pytestmark = pytest.mark.unit

SESSION = "/RTC/v1/sessions/s1"
CREATED = Response(201, {"Location": SESSION, "x-expires": "0"}, None)
OK = Response(204, {}, None)
SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec" / "phone-api.md"


def snake(name: str) -> str:
    name = name.replace("DTMF", "Dtmf").replace("E911", "E911_")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("__", "_").rstrip("_")


def test_the_phone_is_one_facade_with_the_spec_s_methods() -> None:
    assert Phone.__mro__ == (Phone, object)
    text = SPEC.read_text().split("## Error model", 1)[1].split("## Events", 1)[0]
    cells = [row.split("|")[1] for row in text.splitlines() if row.startswith("| ")]
    bare = (re.sub(r"\([^)]*\)", "", cell) for cell in cells)  # no parameters
    spec = {snake(m.strip()) for cell in bare for m in re.split(r"[/,]", cell)} - {"method"}
    ours = {n for n, _ in inspect.getmembers(Phone, inspect.isfunction) if n[0] != "_"}
    not_built = {"associate_access_token", "set_ipv6"}  # deprecated; no IPv6 switch in aiortc
    assert spec - ours == not_built
    assert ours - spec == {"merge_call", "close", "publish"}  # ivrbot's own


def recorder(phone: Phone) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for name in (
        "call:held",
        "call:resumed",
        "conference:held",
        "conference:resumed",
        "call:disconnected",
        "call:rejected",
        "conference:ended",
        "session:expired",
    ):
        phone.on(name, lambda payload, name=name: seen.append((name, payload)))  # fmt: skip
    return seen


async def logged_in(transport: FakeTransport) -> Phone:
    transport.answers[("POST", "/RTC/v1/sessions")] = CREATED
    phone = Phone("http://gateway.invalid", name="unit", in_process=True, transport=transport)
    await phone.login(token="t")
    return phone


async def connected(
    phone: Phone, cls: type[Call], cid: str, connecting: bool = False, **options: Any
) -> Call:
    """A call (or conference) that is up (or ``connecting``), with in-process media offered
    by this side."""
    call = phone._lines.new(cls, "outgoing", "tel:+5550001000", **options)
    call.id = cid
    await phone._negotiation.offer(call)
    call.set_state(CallState.CONNECTING)
    if not connecting:
        call.set_state(CallState.CONNECTED)
    phone._lines.foreground = call
    return call


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport({})


async def test_negotiation_picks_the_media_from_the_first_sdp(transport: FakeTransport) -> None:
    phone = await logged_in(transport)
    negotiation = phone._negotiation
    ours = phone._lines.new(Call, "outgoing", "tel:+5550001000")
    offer = await negotiation.offer(ours)
    assert isinstance(ours.media, LocalMedia) and LocalLink.find(offer["sdp"]) is ours.media.link
    assert not negotiation.negotiated(ours)
    await negotiation.take_answer(ours, {"sdp": offer["sdp"]})
    assert negotiation.negotiated(ours)

    theirs = phone._lines.new(Call, "incoming", "sip:bob@ivrbot.local")
    link = LocalLink("the gateway's end")
    negotiation.take_offer(theirs, {"sdp": link.sdp()})
    assert negotiation.has_offer(theirs)
    answer = await negotiation.answer(theirs)
    assert LocalLink.find(answer["sdp"]) is link and isinstance(theirs.media, LocalMedia)
    assert not negotiation.has_offer(theirs), "an offer is answered once"
    with pytest.raises(ValueError):
        await negotiation.answer(theirs)
    negotiation.take_offer(theirs, {"state": "mod-received"})  # an offer without SDP
    assert not negotiation.has_offer(theirs)
    link.close()
    await phone.close()


@pytest.mark.parametrize(
    ("cls", "resource", "header", "key", "held", "options"),
    [
        (Call, "calls", "x-calls-action", "callsMediaModifications", "call", {}),
        (ConferenceCall, "conferences", "x-conference-action", "conferenceModifications",
         "conference", {"hosting": True}),
    ],
)  # fmt: skip
async def test_hold_and_resume_take_one_path_for_calls_and_conferences(
    transport: FakeTransport,
    cls: type[Call],
    resource: str,
    header: str,
    key: str,
    held: str,
    options: dict[str, Any],
) -> None:
    phone = await logged_in(transport)
    seen = recorder(phone)
    call = await connected(phone, cls, "k1", **options)
    path = f"{SESSION}/{resource}/k1"
    transport.answers[("PUT", path)] = Response(200, {"x-modId": "m1"}, None)
    holding = asyncio.ensure_future(phone.hold())
    await asyncio.sleep(0.01)
    assert not holding.done(), "held once the gateway settles the change"
    await transport.events.deliver(
        {"type": resource, "state": "mod-terminated", "modId": "m1", "reason": "success",
         "resourceURL": path}
    )  # fmt: skip
    await holding
    verb, sent_path, body, headers = transport.sent[-1]
    assert (verb, sent_path, headers) == ("PUT", path, {header: headers[header]})
    assert "hold" in headers[header] and "a=sendonly" in body[key]["sdp"]
    transport.answers[("PUT", path)] = OK  # no modId: nothing to wait for
    await phone.resume()
    assert "resume" in transport.sent[-1][3][header]
    assert "a=sendrecv" in transport.sent[-1][2][key]["sdp"]
    assert [n for n, _ in seen] == [f"{held}:held", f"{held}:resumed"]
    assert call.state == CallState.CONNECTED
    await phone.close()


async def test_the_held_call_returns_when_the_front_one_ends(transport: FakeTransport) -> None:
    phone = await logged_in(transport)
    seen = recorder(phone)
    back = await connected(phone, Call, "k1")
    back.set_state(CallState.HELD, auto=True)  # held by add_call
    front = await connected(phone, Call, "k2")
    assert phone.current_call is front and phone.background_call is back
    transport.answers[("PUT", f"{SESSION}/calls/k1")] = OK
    await transport.events.deliver(
        {"type": "calls", "state": "session-terminated", "reason": "Call terminated",
         "resourceURL": f"{SESSION}/calls/k2"}
    )  # fmt: skip
    async with asyncio.timeout(2):
        while back.state != CallState.CONNECTED:
            await asyncio.sleep(0.01)
    assert phone.current_call is back
    assert transport.sent[-1][3] == {"x-calls-action": "initiate-call-resume"}
    ended = dict(seen)["call:disconnected"]
    assert ended.message == "Call terminated" and "background" not in ended
    await phone.close()


async def test_the_far_end_s_reasons(transport: FakeTransport) -> None:
    phone = await logged_in(transport)
    seen = recorder(phone)
    calls = {}
    for cls, cid, options in ((Call, "k1", {}), (ConferenceCall, "c1", {"hosting": True})):
        calls[cid] = await connected(phone, cls, cid, connecting=True, **options)
    for resource, cid in (("calls", "k1"), ("conferences", "c1")):
        await transport.events.deliver(
            {"type": resource, "state": "session-terminated", "reason": "User busy",
             "resourceURL": f"{SESSION}/{resource}/{cid}"}
        )  # fmt: skip
    assert [(n, p.message) for n, p in seen] == [
        ("call:rejected", "User busy"),  # a call that is still connecting: rejected
        ("conference:ended", "User busy"),  # a conference has no busy callee
    ]
    assert calls["k1"].state == CallState.REJECTED
    assert calls["c1"].state == CallState.DISCONNECTED
    await phone.close()


async def test_logout_ends_the_calls_first_and_marks_the_background_one(
    transport: FakeTransport,
) -> None:
    phone = await logged_in(transport)
    seen = recorder(phone)
    back = await connected(phone, Call, "k1")
    back.set_state(CallState.HELD)
    await connected(phone, Call, "k2")
    await phone.logout()
    deletes = [(path, headers) for verb, path, _, headers in transport.sent if verb == "DELETE"]
    assert deletes == [
        (f"{SESSION}/calls/k1", {"x-delete-reason": "terminate"}),
        (f"{SESSION}/calls/k2", {"x-delete-reason": "terminate"}),
        (SESSION, {}),
    ]
    ended = [p for n, p in seen if n == "call:disconnected"]
    assert [(p.index, p.get("background", False)) for p in ended] == [(1, True), (2, False)]


async def test_an_expired_session_ends_the_calls_here(transport: FakeTransport) -> None:
    transport.answers[("POST", "/RTC/v1/sessions")] = Response(
        201, {"Location": SESSION, "x-expires": "2"}, None
    )  # refreshed after 1 s; the refresh gets 404: the gateway forgot the session
    phone = Phone("http://gateway.invalid", name="unit", in_process=True, transport=transport)
    await phone.login(token="t")
    seen = recorder(phone)
    call = await connected(phone, Call, "k1")
    async with asyncio.timeout(5):
        while not any(n == "session:expired" for n, _ in seen):
            await asyncio.sleep(0.05)
    assert [(n, p.get("message")) for n, p in seen] == [
        ("call:disconnected", "Session expired"),
        ("session:expired", None),
    ]
    assert call.state == CallState.DISCONNECTED and not phone.logged_in
    assert ("DELETE", f"{SESSION}/calls/k1") not in [s[:2] for s in transport.sent]
    await phone.close()
