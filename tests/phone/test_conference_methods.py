"""The Phone's conference methods: the spec's checks in order, and the channel's events.

Unit level: no gateway. The Phone logs in through a scripted transport that answers
requests the way the gateway would (or fails them); the tests set up calls in the Phone's
lines (``phone._lines``) and send event objects on its scripted event channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ivrbot.phone.call import Call, CallState, ConferenceCall
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import EventSource, Response
from tests.helpers import code_of, sync_code_of
from tests.phone.fake_transport import FakeEvents

SESSION = "/RTC/v1/sessions/s1"


class ScriptedTransport:
    """Answers every request with the next scripted response (204 when none is left)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self.replies: list[Response | Exception] = []
        self.token: str | None = None
        self.events = FakeEvents()

    async def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        self.requests.append((method, path, body, headers or {}))
        reply = self.replies.pop(0) if self.replies else Response(204, {}, None)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def open_events(self, session_path: str) -> EventSource:
        return self.events

    async def close(self) -> None:
        pass


@pytest.fixture
async def phone() -> AsyncIterator[tuple[Phone, ScriptedTransport, list[Any]]]:
    transport = ScriptedTransport()
    p = Phone("http://127.0.0.1:9", name="unit", transport=transport)
    errors: list[Any] = []
    p.on("error", errors.append)
    yield p, transport, errors
    for call in list(p.calls):
        await call.close_media()
    p.calls.clear()
    await p.close()


async def log_in(p: Phone, transport: ScriptedTransport) -> None:
    """Log in through the scripted gateway (user id, then the session); forget the requests."""
    created = Response(201, {"Location": SESSION, "x-expires": "0"}, None)
    transport.replies = [Response(204, {}, None), created]
    await p.login(token="t", user_id="alice@ivrbot.local")
    transport.requests.clear()


def walk(call: Call, state: CallState) -> None:
    """Bring a new call to ``state`` (created, connecting, connected or held) by the changes
    the call states allow."""
    path = [CallState.CONNECTING, CallState.CONNECTED, CallState.HELD]
    for step in path[: path.index(state) + 1] if state in path else []:
        call.set_state(step)


def hosted(p: Phone, state: CallState = CallState.CONNECTED) -> ConferenceCall:
    call = p._lines.new(ConferenceCall, "outgoing", "", hosting=True)
    call.id = "c1"
    walk(call, state)
    p._lines.foreground = call
    return call


def invited(p: Phone) -> ConferenceCall:
    call = p._lines.new(ConferenceCall, "incoming", "sip:host@ivrbot.local", hosting=False)
    call.id = "c2"
    call.far_offer = "v=0"
    return call


def plain_call(p: Phone, state: CallState) -> Call:
    call = p._lines.new(Call, "outgoing", "tel:+5550001000")
    walk(call, state)
    return call


@pytest.mark.unit
async def test_checks_before_login(phone: tuple[Phone, ScriptedTransport, list[Any]]) -> None:
    p, transport, errors = phone
    mic: Any = "mic"  # not a MediaStreamTrack
    speaker: Any = "speaker"  # not callable
    assert await code_of(p.start_conference(media_type=None)) == "3101"
    assert await code_of(p.start_conference(media_type="fax")) == "3111"
    assert await code_of(p.start_conference(media_type=None, remote_media=print)) == "3111"
    assert await code_of(p.start_conference(local_media=mic)) == "3121"
    assert await code_of(p.start_conference(remote_media=speaker)) == "3122"
    assert await code_of(p.start_conference()) == "3131"
    assert await code_of(p.join_conference(local_media=mic)) == "3211"
    assert await code_of(p.join_conference(remote_media=speaker)) == "3212"
    assert await code_of(p.join_conference()) == "3221"
    assert await code_of(p.reject_conference()) == "3301"
    assert await code_of(p.end_conference()) == "3501"
    assert await code_of(p.add_participant()) == "3611"
    assert await code_of(p.add_participant("  ")) == "3611"
    assert await code_of(p.add_participant(5)) == "3611"  # type: ignore[arg-type]
    assert await code_of(p.add_participant("sip:bob@ivrbot.local")) == "3612"
    assert await code_of(p.add_participant("tel:+15550001000")) == "3612"
    assert await code_of(p.add_participant("a@b@c")) == "3613"
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3621"
    assert await code_of(p.remove_participant()) == "3711"
    assert await code_of(p.remove_participant("")) == "3711"
    assert await code_of(p.remove_participant("bob@ivrbot.local")) == "3721"
    assert sync_code_of(p.get_participants) == "3401"
    assert len(errors) == 22
    assert {e.js_method for e in errors} >= {"start_conference", "get_participants"}
    assert transport.requests == []


@pytest.mark.unit
async def test_offline_comes_first(phone: tuple[Phone, ScriptedTransport, list[Any]]) -> None:
    p, _, _ = phone
    p._session.online = False
    assert await code_of(p.start_conference(media_type=None)) == "0002"
    assert await code_of(p.join_conference(local_media="mic")) == "0002"  # type: ignore[arg-type]
    assert await code_of(p.reject_conference()) == "0002"
    assert await code_of(p.end_conference()) == "0002"
    assert await code_of(p.add_participant()) == "0002"
    assert await code_of(p.remove_participant()) == "0002"
    assert sync_code_of(p.get_participants) == "3401"  # the spec gives it no offline check


@pytest.mark.unit
async def test_checks_after_login(phone: tuple[Phone, ScriptedTransport, list[Any]]) -> None:
    p, transport, _ = phone
    await log_in(p, transport)
    # nothing hosted, nothing pending
    assert await code_of(p.join_conference()) == "3231"
    assert await code_of(p.reject_conference()) == "3302"
    assert await code_of(p.end_conference()) == "3502"
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3631"
    assert await code_of(p.remove_participant("bob@ivrbot.local")) == "3731"
    assert sync_code_of(p.get_participants) == "3402"
    # a pending plain call is not a conference invitation
    plain = plain_call(p, CallState.CREATED)
    plain.direction = "incoming"
    assert await code_of(p.join_conference()) == "3231"
    p.calls.remove(plain)
    # the current call is a plain call, or a conference this Phone only joined
    p._lines.foreground = plain_call(p, CallState.CONNECTED)
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3631"
    p.calls.clear()
    joined = invited(p)
    walk(joined, CallState.CONNECTED)
    p._lines.foreground = joined
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3631"
    assert sync_code_of(p.get_participants) == "3402"
    p.calls.clear()
    # two calls already
    plain_call(p, CallState.CONNECTED)
    plain_call(p, CallState.HELD)
    assert await code_of(p.start_conference()) == "3961"
    p.calls.clear()
    # an invitation with another call in progress: action must be hold or end
    plain_call(p, CallState.CONNECTED)
    invited(p)
    assert await code_of(p.join_conference()) == "3241"
    assert await code_of(p.join_conference(action="dance")) == "3241"
    p.calls.clear()
    # duplicates and unknown participants
    call = hosted(p)
    call.set_participant("sip:bob@ivrbot.local", "joined", "accepted")
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3641"
    assert await code_of(p.remove_participant("carol@ivrbot.local")) == "3700"
    assert transport.requests == []


@pytest.mark.e2e
async def test_gateway_failures_map_as_the_spec_says(
    phone: tuple[Phone, ScriptedTransport, list[Any]],
) -> None:
    p, transport, _ = phone
    await log_in(p, transport)
    expired: list[Any] = []
    p.on("session:expired", expired.append)
    conflict = Response(409, {}, "no")  # no MessageId: not a mapped API error (1000)
    gone = Response(404, {}, "no conference c1 in this session")  # the method fails (xx00)
    transport.replies = [conflict]
    assert await code_of(p.start_conference()) == "1000"
    assert not p.calls, "the failed conference is forgotten"
    call = hosted(p)
    transport.replies = [gone]
    assert await code_of(p.add_participant("bob@ivrbot.local")) == "3600"
    assert "sip:bob@ivrbot.local" not in call.participants, "a failed invitation is forgotten"
    assert not expired, "a conference that is gone is not an expired session"
    call.set_participant("sip:bob@ivrbot.local", "joined", "accepted")
    transport.replies = [gone]
    assert await code_of(p.remove_participant("bob@ivrbot.local")) == "3700"
    transport.replies = [Response(500, {}, None)]
    assert await code_of(p.remove_participant("sip:bob@ivrbot.local")) == "500"  # bare 5xx
    body = {"RequestError": {"ServiceException": {"MessageId": "SVC8501", "Text": "no"}}}
    transport.replies = [Response(409, {}, body)]
    assert await code_of(p.remove_participant("sip:bob@ivrbot.local")) == "1401"  # mapped
    transport.replies = [RuntimeError("boom")]
    assert await code_of(p.end_conference()) == "3500"
    assert not p.calls, "the conference is over here even when the request failed"
    p.calls.clear()
    invited(p)
    transport.replies = [conflict]
    assert await code_of(p.reject_conference()) == "1000"
    assert await code_of(p.join_conference()) == "3200"  # the invitation's offer is no SDP
    assert not p.calls


@pytest.mark.e2e
async def test_requests_and_events(phone: tuple[Phone, ScriptedTransport, list[Any]]) -> None:
    p, transport, _ = phone
    await log_in(p, transport)
    seen: list[tuple[str, Any]] = []
    for name in (
        "conference:invitation-sending", "conference:invitation-sent",
        "conference:invitation-accepted", "conference:invitation-rejected",
        "conference:participant-removed", "conference:held", "conference:resumed",
        "conference:disconnecting", "conference:ended", "conference:invitation-received",
        "conference:canceled", "notification",
    ):  # fmt: skip
        p.on(name, lambda payload, name=name: seen.append((name, payload)))
    call = hosted(p)
    path = f"{SESSION}/conferences/c1"
    transport.replies = [Response(202, {"x-state": "add-pending", "x-modId": "m1"}, None)]
    await p.add_participant("bob@ivrbot.local")
    assert transport.requests[-1][:2] == ("PUT", f"{path}/participants/sip:bob@ivrbot.local")
    await p.add_participant("5550001001")
    assert transport.requests[-1][1] == f"{path}/participants/tel:+5550001001"
    assert seen[0] == ("conference:invitation-sending", seen[0][1])
    assert seen[0][1]["invitee"] == "sip:bob@ivrbot.local"
    sent = seen[1][1].to_dict()
    assert seen[1][0] == "conference:invitation-sent" and sent["modId"] == "m1"
    assert sent["callType"] == "conference"
    assert sent["participants"]["sip:bob@ivrbot.local"]["status"] == "invited"
    assert sent["invitations"]["sip:bob@ivrbot.local"]["status"] == "pending"
    assert p.get_calls()[0]["breed"] == "conference"

    def event(state: str, **fields: Any) -> dict[str, Any]:
        return {"type": "conferences", "state": state, "resourceURL": path, **fields}

    seen.clear()
    await transport.events.deliver(
        event("session-modified", modId="m1", participant="sip:bob@ivrbot.local", status="joined")
    )
    await transport.events.deliver(
        event("mod-terminated", modId="m2", participant="tel:+5550001001", reason="User busy")
    )
    await transport.events.deliver(
        event("session-modified", modId="m3", participant="sip:bob@ivrbot.local", status="left",
              reason="Call terminated")
    )  # fmt: skip
    names = [n for n, _ in seen]
    assert names == [
        "conference:invitation-accepted",
        "conference:invitation-rejected",
        "conference:participant-removed",
    ]
    assert seen[1][1].get("message") == "User busy"
    assert p.get_participants() == {}
    assert call.invitations == {
        "sip:bob@ivrbot.local": {"participant": "sip:bob@ivrbot.local", "status": "left"},
        "tel:+5550001001": {"participant": "tel:+5550001001", "status": "rejected"},
    }

    # hold() / resume() / hangup() on a conference use the conference resource
    seen.clear()
    await p.hold()
    assert transport.requests[-1][1] == path
    assert transport.requests[-1][3] == {"x-conference-action": "initiate-hold"}
    await p.resume()
    assert transport.requests[-1][3] == {"x-conference-action": "initiate-resume"}
    await p.hangup()
    assert transport.requests[-1][:2] == ("DELETE", path)
    assert [n for n, _ in seen] == [
        "conference:held", "conference:resumed", "conference:disconnecting", "conference:ended",
    ]  # fmt: skip
    assert call.state == CallState.DISCONNECTED and not p.calls

    # an invitation, then the host withdraws it; a second one while one is pending is refused
    seen.clear()
    invite = {"from": "sip:host@ivrbot.local", "sdp": "v=0"}
    url2 = f"{SESSION}/conferences/c2"
    await transport.events.deliver(
        {"type": "conferences", "state": "invitation-received", "resourceURL": url2, **invite}
    )
    await transport.events.deliver(
        {"type": "conferences", "state": "invitation-received", "resourceURL": url2 + "x", **invite}
    )
    assert transport.requests[-1][:2] == ("DELETE", url2 + "x")
    assert transport.requests[-1][3] == {"x-delete-reason": "reject"}
    await transport.events.deliver(
        {"type": "conferences", "state": "session-terminated", "resourceURL": url2,
         "reason": "Call canceled"}
    )  # fmt: skip
    assert [n for n, _ in seen] == [
        "conference:invitation-received", "notification", "conference:canceled",
    ]  # fmt: skip
    assert seen[0][1]["from"] == "sip:host@ivrbot.local"
    assert not p.calls


@pytest.mark.e2e
async def test_events_before_the_post_returns_are_kept(
    phone: tuple[Phone, ScriptedTransport, list[Any]],
) -> None:
    p, transport, _ = phone
    await log_in(p, transport)
    early = {"type": "conferences", "state": "session-terminated", "reason": "Media failed",
             "resourceURL": f"{SESSION}/conferences/c9"}  # fmt: skip
    await transport.events.deliver(early)  # arrives before the POST's 201 is read
    ended: list[Any] = []
    p.on("conference:ended", ended.append)
    transport.replies = [Response(201, {"Location": f"{SESSION}/conferences/c9"}, None)]
    call = await p.start_conference()
    assert call.id == "c9" and call.state == CallState.DISCONNECTED
    assert ended[0].get("message") == "Media failed"
