"""The core's events as the wire's event objects (docs/spec/rtc-api.md, "Event channel").

The one place in the server that spells the wire's event names (``state``: ``session-open``
and its siblings), types and keys: ``tests/wire/test_serialise.py`` checks that no other
module of ivrbot does (the Phone in ivrbot/phone/ and the browser's scripts are clients:
they parse the wire with their own names).

:func:`event_object` is what a client reads; :func:`parse_event_object` is its exact
inverse (a media worker's events cross to the gateway as event objects).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from ivrbot.core.events import PAYLOADS, EventKind, Resource, SessionEvent, Topic

STATES: dict[EventKind, str] = {
    EventKind.INVITATION_RECEIVED: "invitation-received",
    EventKind.SESSION_OPEN: "session-open",
    EventKind.SESSION_MODIFIED: "session-modified",
    EventKind.SESSION_TERMINATED: "session-terminated",
    EventKind.MOD_RECEIVED: "mod-received",
    EventKind.MOD_TERMINATED: "mod-terminated",
    EventKind.MOVE_TERMINATED: "move-terminated",
    EventKind.TRANSFER_INITIATED: "transfer-initiated",
    EventKind.TRANSFER_TERMINATED: "transfer-terminated",
}
TYPES: dict[Topic, str] = {Topic.CALL: "calls", Topic.CONFERENCE: "conferences"}
# a payload's field -> its key in the event object (after type, state and resourceURL, in
# the payload's field order)
KEYS: dict[str, str] = {
    "from_uri": "from",
    "to_uri": "to",
    "sdp": "sdp",
    "provisional": "provisionalSDP",
    "mod_id": "modId",
    "participant": "participant",
    "status": "status",
    "reason": "reason",
    "media_type": "newMediaType",
    "target_call_id": "transferToCallId",
}
HEAD = ("type", "state", "resourceURL")

_KINDS = {state: kind for kind, state in STATES.items()}
_TOPICS = {name: topic for topic, name in TYPES.items()}


def event_object(event: SessionEvent) -> dict[str, Any]:
    """``event`` as the spec's ``eventObject``: type, state, resourceURL, then the
    payload's keys that have a value (``None`` and ``False`` are left out)."""
    obj: dict[str, Any] = dict(
        zip(HEAD, (TYPES[event.about.topic], STATES[event.kind], event.about.url), strict=True)
    )
    for field in fields(event.payload):
        value = getattr(event.payload, field.name)
        if value is None or value is False:
            continue
        obj[KEYS[field.name]] = str(value) if isinstance(value, str) else value  # enums too
    return obj


def parse_event_object(obj: Mapping[str, Any]) -> SessionEvent:
    """The event that :func:`event_object` turned into ``obj`` (ValueError for anything it
    would not have made)."""
    try:
        topic, kind, url = _TOPICS[obj["type"]], _KINDS[obj["state"]], str(obj["resourceURL"])
    except (KeyError, TypeError):
        raise ValueError(f"not an event object: {dict(obj)!r}") from None
    names = [field.name for field in fields(PAYLOADS[kind])]
    unknown = set(obj) - set(HEAD) - {KEYS[name] for name in names}
    if unknown:
        raise ValueError(f"{obj['state']} has no {', '.join(sorted(unknown))}")
    try:
        payload = PAYLOADS[kind](**{name: obj[KEYS[name]] for name in names if KEYS[name] in obj})
    except TypeError as exc:  # a key it needs is missing
        raise ValueError(f"{obj['state']}: {exc}") from None
    return SessionEvent(Resource(topic, url), payload)


def envelope(batch: list[SessionEvent]) -> dict[str, Any]:
    """A batch of events as the event channel's body (WebSocket message or long-poll)."""
    return {"events": {"eventList": [{"eventObject": event_object(e)} for e in batch]}}
