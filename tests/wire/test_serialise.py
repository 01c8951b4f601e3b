"""The core's typed events as the spec's event objects (docs/spec/rtc-api.md, "Event
channel"): every kind, with exactly the keys a client reads, in order; the inverse a media
worker's events go through; and no other module of the server spelling the wire's names."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from ivrbot.core.call_state import Reason
from ivrbot.core.events import (
    PAYLOADS,
    EventKind,
    EventPayload,
    InvitationReceived,
    ModReceived,
    ModTerminated,
    MoveTerminated,
    Resource,
    SessionEvent,
    SessionModified,
    SessionOpen,
    SessionTerminated,
    Topic,
    TransferInitiated,
    TransferTerminated,
)
from ivrbot.wire.serialise import STATES, envelope, event_object, parse_event_object

pytestmark = pytest.mark.unit

CALL = "/RTC/v1/sessions/5e55/calls/c411"
CONF = "/RTC/v1/sessions/5e55/conferences/c0f"
OFFER, ANSWER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n", "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\n"


def on_call(state: str, *keys: tuple[str, Any]) -> list[tuple[str, Any]]:
    return [("type", "calls"), ("state", state), ("resourceURL", CALL), *keys]


def on_conf(state: str, *keys: tuple[str, Any]) -> list[tuple[str, Any]]:
    return [("type", "conferences"), ("state", state), ("resourceURL", CONF), *keys]


# (what the core publishes, the event object a client reads: its keys in order)
SAMPLES: list[tuple[Topic, EventPayload, list[tuple[str, Any]]]] = [
    (
        Topic.CALL,
        InvitationReceived(from_uri="sip:alice@ivrbot.local", to_uri="tel:+15550001000", sdp=OFFER),
        on_call(
            "invitation-received",
            ("from", "sip:alice@ivrbot.local"),
            ("to", "tel:+15550001000"),
            ("sdp", OFFER),
        ),
    ),
    # early media: the answer, provisional; then connected without sdp
    (
        Topic.CALL,
        SessionOpen(sdp=ANSWER, provisional=True),
        on_call("session-open", ("sdp", ANSWER), ("provisionalSDP", True)),
    ),
    (Topic.CALL, SessionModified(), on_call("session-modified")),
    # no early media: one session-open with the answer; the callee's has none
    (Topic.CALL, SessionOpen(sdp=ANSWER), on_call("session-open", ("sdp", ANSWER))),
    (Topic.CALL, SessionOpen(), on_call("session-open")),
    (
        Topic.CALL,
        SessionModified(reason="held"),
        on_call("session-modified", ("reason", "held")),
    ),
    (
        Topic.CALL,
        SessionModified(reason="transferred", from_uri="sip:bob@ivrbot.local"),
        on_call("session-modified", ("reason", "transferred"), ("from", "sip:bob@ivrbot.local")),
    ),
    (Topic.CALL, SessionTerminated(), on_call("session-terminated")),
    (
        Topic.CALL,
        SessionTerminated(reason=Reason.BUSY),
        on_call("session-terminated", ("reason", "User busy")),
    ),
    (
        Topic.CALL,
        ModReceived(mod_id="m1", media_type="audio", sdp=OFFER),
        on_call("mod-received", ("modId", "m1"), ("newMediaType", "audio"), ("sdp", OFFER)),
    ),
    # hold / resume: the answer to the client's offer
    (
        Topic.CALL,
        ModTerminated(mod_id="m2", reason="success", sdp=ANSWER),
        on_call("mod-terminated", ("modId", "m2"), ("reason", "success"), ("sdp", ANSWER)),
    ),
    (
        Topic.CALL,
        ModTerminated(mod_id="m1", reason="rejected", media_type="audio"),
        on_call(
            "mod-terminated", ("modId", "m1"), ("reason", "rejected"), ("newMediaType", "audio")
        ),
    ),
    (
        Topic.CALL,
        MoveTerminated(reason="moved"),
        on_call("move-terminated", ("reason", "moved")),
    ),
    (
        Topic.CALL,
        TransferInitiated(target_call_id="c2"),
        on_call("transfer-initiated", ("transferToCallId", "c2")),
    ),
    (
        Topic.CALL,
        TransferTerminated(reason="success", target_call_id="c2"),
        on_call("transfer-terminated", ("reason", "success"), ("transferToCallId", "c2")),
    ),
    # conferences: to the host, then to an invitee
    (Topic.CONFERENCE, SessionOpen(sdp=ANSWER), on_conf("session-open", ("sdp", ANSWER))),
    (
        Topic.CONFERENCE,
        ModTerminated(mod_id="m3", reason="success", participant="sip:b@x", status="joined"),
        on_conf(
            "mod-terminated",
            ("modId", "m3"),
            ("reason", "success"),
            ("participant", "sip:b@x"),
            ("status", "joined"),
        ),
    ),
    (
        Topic.CONFERENCE,
        ModTerminated(mod_id="m3", reason=Reason.NOT_FOUND, participant="sip:b@x"),
        on_conf(
            "mod-terminated",
            ("modId", "m3"),
            ("reason", "User not found"),
            ("participant", "sip:b@x"),
        ),
    ),
    (
        Topic.CONFERENCE,
        SessionModified(mod_id="m4", participant="tel:+1555", status="left", reason=Reason.HANGUP),
        on_conf(
            "session-modified",
            ("modId", "m4"),
            ("participant", "tel:+1555"),
            ("status", "left"),
            ("reason", "Call terminated"),
        ),
    ),
    (
        Topic.CONFERENCE,
        InvitationReceived(from_uri="sip:host@x", to_uri="sip:b@x", sdp=OFFER),
        on_conf("invitation-received", ("from", "sip:host@x"), ("to", "sip:b@x"), ("sdp", OFFER)),
    ),
    (
        Topic.CONFERENCE,
        SessionTerminated(reason=Reason.ENDED),
        on_conf("session-terminated", ("reason", "Conference ended")),
    ),
]


def event(topic: Topic, payload: EventPayload) -> SessionEvent:
    return SessionEvent(Resource(topic, CALL if topic is Topic.CALL else CONF), payload)


@pytest.mark.parametrize(("topic", "payload", "expected"), SAMPLES)
def test_each_event_is_the_spec_event_object_with_exactly_its_keys(
    topic: Topic, payload: EventPayload, expected: list[tuple[str, Any]]
) -> None:
    obj = event_object(event(topic, payload))
    assert list(obj.items()) == expected
    # what goes out on the channel: plain JSON (a reason is its text, not an enum)
    assert json.loads(json.dumps(obj)) == dict(expected)
    assert all(type(v) in (str, bool) for v in obj.values())


def test_the_samples_cover_every_kind_and_every_kind_has_a_wire_name() -> None:
    assert {payload.kind for _, payload, _ in SAMPLES} == set(EventKind)
    assert set(PAYLOADS) == set(STATES) == set(EventKind)
    assert len(set(STATES.values())) == len(EventKind)


@pytest.mark.parametrize(("topic", "payload", "expected"), SAMPLES)
def test_an_event_object_reads_back_as_the_same_event(
    topic: Topic, payload: EventPayload, expected: list[tuple[str, Any]]
) -> None:
    sent = event(topic, payload)
    back = parse_event_object(dict(expected))
    assert back == sent
    assert event_object(back) == dict(expected)
    assert back.about.id == ("c411" if topic is Topic.CALL else "c0f")


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "calls", "state": "session-opened", "resourceURL": CALL},  # no such state
        {"type": "call", "state": "session-open", "resourceURL": CALL},  # no such type
        {"type": "calls", "state": "session-open"},  # no resource
        {"type": "calls", "state": "session-open", "resourceURL": CALL, "modId": "m1"},
        {"type": "calls", "state": "mod-received", "resourceURL": CALL, "modId": "m1"},  # no sdp
        {"type": ["calls"], "state": "session-open", "resourceURL": CALL},
    ],
)
def test_what_the_serialiser_would_not_make_is_refused(obj: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_event_object(obj)


def test_a_batch_goes_out_in_the_spec_envelope_in_order() -> None:
    batch = [event(Topic.CALL, SessionOpen(sdp=ANSWER)), event(Topic.CALL, SessionTerminated())]
    assert envelope(batch) == {
        "events": {
            "eventList": [
                {"eventObject": dict(on_call("session-open", ("sdp", ANSWER)))},
                {"eventObject": dict(on_call("session-terminated"))},
            ]
        }
    }


# one place spells the wire -------------------------------------------------------------------
PACKAGE = Path(__file__).resolve().parents[2] / "ivrbot"
# the event object's states and the keys only it has
WIRE_NAMES = set(STATES.values()) | {
    "resourceURL",
    "provisionalSDP",
    "transferToCallId",
    "newMediaType",
}
ALLOWED = (
    PACKAGE / "wire" / "serialise.py",  # the serialiser
    PACKAGE / "phone",  # the Python Phone: a client, it parses the wire with its own names
    PACKAGE / "events.py",  # the Phone's own events (phone-api.md: newMediaType is one key)
)


def wire_spellings(source: str) -> list[tuple[int, str]]:
    """(line, name) of every string literal in ``source`` that is a wire name (a docstring
    or comment that mentions one is no spelling of it)."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in WIRE_NAMES
    ]


def test_the_check_finds_a_wire_name_spelled_in_code() -> None:
    source = '"""Publishes session-open."""\nif event["state"] == "session-open":\n    pass\n'
    assert wire_spellings(source) == [(2, "session-open")]
    assert wire_spellings('obj = {"provisionalSDP": True}') == [(1, "provisionalSDP")]


def test_only_the_serialiser_spells_the_wire_event_names() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {name!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not any(path == a or a in path.parents for a in ALLOWED)
        for line, name in wire_spellings(path.read_text())
    ]
    assert found == [], "wire names spelled outside ivrbot/wire/serialise.py:\n" + "\n".join(found)
    assert wire_spellings((PACKAGE / "wire" / "serialise.py").read_text())  # it looks
