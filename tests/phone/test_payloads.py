"""Every event's payload has the keys docs/spec/phone-api.md gives it.

The spec's "Events and payloads" table is read from the file; for each event the payload the
Phone publishes (made the way the Phone makes it: a call's or a conference's event data) must
have every key the spec lists, and any other key must be an ivrbot extension named in the
payload class's docstring."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ivrbot.errors import PhoneError
from ivrbot.events import (
    PAYLOADS,
    CallEventData,
    CallSwitched,
    Dialing,
    Event,
    IncomingCall,
    InvitationSending,
    Notification,
    SessionNotice,
    SessionReady,
    WarningMessage,
)
from ivrbot.phone.call import Call, ConferenceCall
from ivrbot.phone.phone import Phone
from tests.phone.fake_transport import FakeTransport

pytestmark = pytest.mark.unit

SPEC = Path(__file__).resolve().parents[2] / "docs" / "spec" / "phone-api.md"
EVENT_DATA_OPTIONAL = {"codec", "downgrade", "generator", "operation", "invitations",
                       "participants"}  # fmt: skip


def _keys(braces: str) -> set[str]:
    """'{from: eventData, to, mediaType ('a'|'b'), codec?}' -> {from, to, mediaType}."""
    inner = re.sub(r"\([^)]*\)", "", braces.strip().strip("{}"))
    names = [part.split(":")[0].strip() for part in inner.split(",")]
    return {n for n in names if n and not n.endswith("?")}


def spec_payload_keys() -> dict[str, set[str] | None]:
    """{event name: the keys the spec gives its payload (None: no payload)}."""
    text = SPEC.read_text()
    section = text.split("## Events and payloads", 1)[1].split("\n## ", 1)[0]
    event_data = _keys(re.search(r"`(\{index.*?\})`", section, re.S).group(1))  # type: ignore[union-attr]
    error_fields = re.search(r"Error object fields:\n`([^`]*)`", text).group(1)  # type: ignore[union-attr]
    out: dict[str, set[str] | None] = {}
    for line in (row for row in section.splitlines() if row.startswith("|")):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("event", "---"):
            continue
        names, payload = cells
        keys: set[str] | None
        if payload.split(" (")[0] == "none":
            keys = None
        elif payload == "the error object":
            keys = {f.strip() for f in error_fields.split(",")}
        elif payload.startswith("{"):
            keys = _keys(payload.split("}")[0] + "}")
        else:
            assert payload.startswith("eventData"), payload
            keys = set(event_data)
            if "with invitations and participants" in payload:
                keys |= {"invitations", "participants"}
            for extra in payload.split(";")[0].split("+")[1:]:
                if " when " in extra:  # present only sometimes (background: true)
                    continue
                keys |= _keys(extra.split("(")[0])
        for name in names.split(","):
            out[name.strip()] = keys
    return out


SPEC_KEYS = spec_payload_keys()
# ivrbot's own events, which the spec does not list: what a bot hears (keys received, the
# far end's hold)
IVRBOT_EVENTS = {
    Event.DTMF_TONE_RECEIVED.value,
    Event.CALL_REMOTE_HELD.value,
    Event.CALL_REMOTE_RESUMED.value,
}


@pytest.fixture
async def phone() -> Any:
    p = Phone("http://gateway.invalid", transport=FakeTransport({}))
    yield p
    for call in list(p.calls):
        await call.close_media()


def sample(phone: Phone, event: Event) -> Any:
    """A payload of ``event`` made as the Phone makes it."""
    kind = PAYLOADS[event]
    lines = phone._lines
    cls = ConferenceCall if event.startswith("conference:") else Call
    options = {"hosting": True} if cls is ConferenceCall else {}
    call = lines.new(cls, "outgoing", "tel:+5550001000", **options)
    if isinstance(call, ConferenceCall):
        call.set_participant("sip:bob@ivrbot.local", "invited", "pending")
    fields: dict[str, dict[str, Any]] = {
        "CallEnded": {"message": "Call terminated"},
        "CallStateChanged": {"old_state": "created", "new_state": "connecting"},
        "MediaChange": {"new_media_type": "video"},
        "Tone": {"tone": "1", "method": "rfc4733"},
        "Invitation": {"invitee": "sip:bob@ivrbot.local", "mod_id": "m1"},
        "ParticipantRemoved": {"participant": "sip:bob@ivrbot.local", "message": "left"},
    }
    others = {
        SessionReady: SessionReady("s1", "alice@ivrbot.local"),
        SessionNotice: SessionNotice("s1"),
        CallSwitched: CallSwitched(call.event_data(), call.event_data()),
        Dialing: Dialing("tel:+5550001000", "audio"),
        IncomingCall: IncomingCall("sip:alice@ivrbot.local", "audio"),
        InvitationSending: InvitationSending("sip:bob@ivrbot.local"),
        Notification: Notification("a further incoming call was refused", call.event_data()),
        WarningMessage: WarningMessage("the call is already muted"),
        PhoneError: PhoneError("2000", "login", "failed"),
    }
    if kind in others:
        return others[kind]
    assert kind is not None and issubclass(kind, CallEventData)
    return call.event_data(kind, **fields.get(kind.__name__, {}))


def test_the_spec_table_is_read_whole() -> None:
    assert len(SPEC_KEYS) >= 45
    assert SPEC_KEYS["call:incoming"] == {"from", "mediaType", "codec", "timestamp"}
    assert SPEC_KEYS["call:state-changed"] >= {"index", "callType", "oldState", "newState"}
    assert SPEC_KEYS["session:disconnected"] is None
    assert SPEC_KEYS["error"] is not None and "ErrorCode" in SPEC_KEYS["error"]


def test_every_event_has_a_payload_type_and_the_spec_agrees() -> None:
    assert set(PAYLOADS) == set(Event)
    spec_events = set(SPEC_KEYS)
    ours = {e.value for e in Event} - IVRBOT_EVENTS
    assert spec_events == ours
    for name, keys in SPEC_KEYS.items():
        assert (keys is None) == (PAYLOADS[Event(name)] is None), name


@pytest.mark.parametrize("event", [e for e in Event if PAYLOADS[e] is not None])
async def test_to_dict_has_the_spec_keys(phone: Phone, event: Event) -> None:
    payload = sample(phone, event)
    assert type(payload) is PAYLOADS[event]
    got = set(payload.to_dict())
    # ivrbot's own carry what their spec twins do: dtmf:tone-received what dtmf:tone-sent
    # does (+ method), call:remote-held / -resumed what call:held / call:resumed do
    twin = {"dtmf:tone-received": "dtmf:tone-sent", "call:remote-held": "call:held",
            "call:remote-resumed": "call:resumed"}.get(event.value, event.value)  # fmt: skip
    wanted = SPEC_KEYS.get(twin) or set()
    assert wanted <= got, (event, wanted - got)
    extensions = got - wanted - EVENT_DATA_OPTIONAL
    doc = type(payload).__doc__ or ""
    for key in extensions:
        assert f"``{key}``" in doc, f"{event}: {key} is not documented in {type(payload)}"


async def test_payloads_read_as_the_spec_s_mappings(phone: Phone) -> None:
    """Handlers written against the spec's keys keep working: payload['from'], .get()."""
    call = phone._lines.new(Call, "incoming", "sip:alice@ivrbot.local")
    data = call.event_data()
    assert data["from"] == "sip:alice@ivrbot.local" and data.index == call.index
    assert data.get("message") is None and dict(data) == data.to_dict()
    incoming = IncomingCall(call.peer, "audio")
    assert incoming["from"] == incoming.from_ and "codec" in incoming


async def test_publish_refuses_a_payload_of_another_type(phone: Phone) -> None:
    with pytest.raises(TypeError):
        phone.publish(Event.CALL_INCOMING, WarningMessage("not an incoming call"))
    with pytest.raises(TypeError):
        phone.publish(Event.SESSION_DISCONNECTED, SessionNotice("s1"))
    with pytest.raises(TypeError):
        phone.publish(Event.SESSION_READY)
