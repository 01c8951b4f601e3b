"""Phone event names (exactly as in docs/spec/phone-api.md) and their typed payloads.

Every payload is a frozen dataclass with ``to_dict()`` giving the spec's keys (section
"Events and payloads" of docs/spec/phone-api.md); :data:`PAYLOADS` says which payload each
event carries (``None``: the spec gives the event no payload). Handlers receive the payload
itself: typed attributes (``data.index``, ``data.message``) and, because every payload is
also a read-only mapping over ``to_dict()``, the spec's keys (``data["from"]``,
``data.get("newState")``, ``dict(data)``). Keys beyond the spec's are ivrbot extensions,
listed in each class's docstring.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ivrbot.errors import PhoneError


class Event(StrEnum):
    SESSION_READY = "session:ready"
    SESSION_DISCONNECTED = "session:disconnected"
    SESSION_EXPIRED = "session:expired"
    SESSION_CALL_SWITCHED = "session:call-switched"
    GATEWAY_UNREACHABLE = "gateway:unreachable"
    ADDRESS_UPDATED = "address-updated"
    DIALING = "dialing"
    ANSWERING = "answering"
    CALL_INCOMING = "call:incoming"
    CALL_CONNECTING = "call:connecting"
    CALL_CONNECTED = "call:connected"
    CALL_DISCONNECTING = "call:disconnecting"
    CALL_DISCONNECTED = "call:disconnected"
    CALL_CANCELED = "call:canceled"
    CALL_REJECTED = "call:rejected"
    CALL_MUTED = "call:muted"
    CALL_UNMUTED = "call:unmuted"
    CALL_HELD = "call:held"
    CALL_RESUMED = "call:resumed"
    CALL_MOVED = "call:moved"
    CALL_TRANSFERRING = "call:transferring"
    CALL_TRANSFERRED = "call:transferred"
    CALL_RINGBACK_PROVIDED = "call:ringback-provided"
    CALL_MODIFICATION_IN_PROGRESS = "call:modification-in-progress"
    CALL_MEDIA_MODIFICATION = "call:media-modification"
    CALL_STATE_CHANGED = "call:state-changed"
    MEDIA_ESTABLISHED = "media:established"
    DTMF_TONE_SENDING = "dtmf:tone-sending"
    DTMF_TONE_SENT = "dtmf:tone-sent"
    CONFERENCE_CONNECTING = "conference:connecting"
    CONFERENCE_CONNECTED = "conference:connected"
    CONFERENCE_JOINING = "conference:joining"
    CONFERENCE_HELD = "conference:held"
    CONFERENCE_RESUMED = "conference:resumed"
    CONFERENCE_ENDED = "conference:ended"
    CONFERENCE_CANCELED = "conference:canceled"
    CONFERENCE_DISCONNECTING = "conference:disconnecting"
    CONFERENCE_INVITATION_RECEIVED = "conference:invitation-received"
    CONFERENCE_INVITATION_SENDING = "conference:invitation-sending"
    CONFERENCE_INVITATION_SENT = "conference:invitation-sent"
    CONFERENCE_INVITATION_ACCEPTED = "conference:invitation-accepted"
    CONFERENCE_INVITATION_REJECTED = "conference:invitation-rejected"
    CONFERENCE_PARTICIPANT_REMOVED = "conference:participant-removed"
    NOTIFICATION = "notification"
    WARNING = "warning"
    ERROR = "error"
    CONNECTIVITY_ON = "connectivity:on"
    CONNECTIVITY_OFF = "connectivity:off"
    # ivrbot extension: a keypad tone received from the far end (RFC 4733 or in-band).
    # The browser SDK has no such event because a browser never acts on received tones;
    # a bot does.
    DTMF_TONE_RECEIVED = "dtmf:tone-received"
    # ivrbot extension: the far end put the call on hold, or took it off hold (the caller
    # holds, or the gateway holds the caller's leg). Only a session that declared its hold
    # audio (a bot: ``Phone(hold_audio=...)``) is told; a bot stops listening meanwhile.
    CALL_REMOTE_HELD = "call:remote-held"
    CALL_REMOTE_RESUMED = "call:remote-resumed"


def now_ms() -> int:
    return int(time.time() * 1000)


class Payload(Mapping[str, Any]):
    """An event's payload: typed fields, and a read-only mapping of the spec's keys."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The payload with the spec's keys (a new dict each time)."""

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


# session ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionReady(Payload):
    """session:ready: ``{sessionId, timeStamp}`` (+ ``userid`` when known)."""

    session_id: str
    user_id: str = ""
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"sessionId": self.session_id, "timeStamp": self.timestamp}
        if self.user_id:
            out["userid"] = self.user_id
        return out


@dataclass(frozen=True)
class SessionNotice(Payload):
    """session:expired, gateway:unreachable, address-updated: ``{timestamp, sessionId}``."""

    session_id: str | None
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "sessionId": self.session_id}


# calls -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dialing(Payload):
    """dialing: ``{to, mediaType, timestamp}``."""

    to: str
    media_type: str
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "mediaType": self.media_type, "timestamp": self.timestamp}


@dataclass(frozen=True)
class IncomingCall(Payload):
    """call:incoming, answering, conference:invitation-received, conference:joining:
    ``{from, mediaType, codec, timestamp}``."""

    from_: str
    media_type: str
    codec: str = ""
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_,
            "mediaType": self.media_type,
            "codec": self.codec,
            "timestamp": self.timestamp,
        }


Participants = dict[str, dict[str, str]]  # {uri: {participant, status}}


@dataclass(frozen=True)
class CallEventData(Payload):
    """The call's event data carried by most call events (spec: eventData): ``{index,
    timestamp, callType, mediaType, to, from}`` and, when known, ``generator``, ``codec``,
    and for a conference ``invitations`` and ``participants``."""

    index: int
    call_type: str  # 'call' | 'conference'
    media_type: str
    to: str = ""
    from_: str = ""
    generator: str = ""  # 'initiator' | 'receiver'
    codec: str = ""
    invitations: Participants | None = None
    participants: Participants | None = None
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "timestamp": self.timestamp,
            "callType": self.call_type,
            "mediaType": self.media_type,
            "to": self.to,
            "from": self.from_,
        }
        if self.generator:
            out["generator"] = self.generator
        if self.codec:
            out["codec"] = self.codec
        if self.invitations is not None:
            out["invitations"] = {k: dict(v) for k, v in self.invitations.items()}
        if self.participants is not None:
            out["participants"] = {k: dict(v) for k, v in self.participants.items()}
        return out


@dataclass(frozen=True, kw_only=True)
class CallEnded(CallEventData):
    """call:disconnected: eventData + ``message`` (the reason) + ``background: true`` when
    it was not the foreground call. Also call:canceled, call:rejected, conference:ended and
    conference:canceled, where ``message`` is an extension (the far end's reason)."""

    message: str = ""
    background: bool = False

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict() | {"message": self.message}
        if self.background:
            out["background"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class CallStateChanged(CallEventData):
    """call:state-changed: eventData + ``oldState``, ``newState``."""

    old_state: str
    new_state: str

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"oldState": self.old_state, "newState": self.new_state}


@dataclass(frozen=True, kw_only=True)
class MediaChange(CallEventData):
    """call:media-modification: eventData + ``newMediaType`` (extension: ``accepted``).
    Also call:modification-in-progress, where ``newMediaType`` is an extension."""

    new_media_type: str
    accepted: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict() | {"newMediaType": self.new_media_type}
        if self.accepted is not None:
            out["accepted"] = self.accepted
        return out


@dataclass(frozen=True, kw_only=True)
class Tone(CallEventData):
    """dtmf:tone-sent: eventData + ``tone``; also dtmf:tone-sending (``tone`` is an
    extension) and dtmf:tone-received (an ivrbot event: + ``method``, 'rfc4733')."""

    tone: str
    method: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict() | {"tone": self.tone}
        if self.method:
            out["method"] = self.method
        return out


@dataclass(frozen=True)
class CallSwitched(Payload):
    """session:call-switched: ``{from: eventData, to: eventData, timestamp}``."""

    from_: CallEventData
    to: CallEventData
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.from_.to_dict(), "to": self.to.to_dict(), "timestamp": self.timestamp}


# conferences -----------------------------------------------------------------------------
@dataclass(frozen=True)
class InvitationSending(Payload):
    """conference:invitation-sending: ``{invitee, timestamp}``."""

    invitee: str
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"invitee": self.invitee, "timestamp": self.timestamp}


@dataclass(frozen=True, kw_only=True)
class Invitation(CallEventData):
    """conference:invitation-sent, -accepted, -rejected: eventData with the maps; extensions:
    ``invitee``, ``modId`` (sent) and ``message`` (rejected: the invitee's reason)."""

    invitee: str
    mod_id: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict() | {"invitee": self.invitee}
        if self.mod_id:
            out["modId"] = self.mod_id
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, kw_only=True)
class ParticipantRemoved(CallEventData):
    """conference:participant-removed: eventData with the maps; extensions: ``participant``
    and ``message`` (why: removed, left, canceled)."""

    participant: str
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict() | {"participant": self.participant, "message": self.message}


# messages --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Notification(Payload):
    """notification: eventData + ``message``; without a call (a further incoming call
    refused) ``{message, timestamp}``."""

    message: str
    call: CallEventData | None = None
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        base = self.call.to_dict() if self.call is not None else {"timestamp": self.timestamp}
        return base | {"message": self.message}


@dataclass(frozen=True)
class WarningMessage(Payload):
    """warning: ``{message}``."""

    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.message}


# which payload each event carries -----------------------------------------------------------
_CALL_DATA = (
    Event.CALL_CONNECTING, Event.CALL_CONNECTED, Event.CALL_DISCONNECTING, Event.CALL_MUTED,
    Event.CALL_UNMUTED, Event.CALL_HELD, Event.CALL_RESUMED, Event.CALL_MOVED,
    Event.CALL_TRANSFERRING, Event.CALL_TRANSFERRED, Event.CALL_RINGBACK_PROVIDED,
    Event.MEDIA_ESTABLISHED, Event.CONFERENCE_CONNECTING, Event.CONFERENCE_CONNECTED,
    Event.CONFERENCE_HELD, Event.CONFERENCE_RESUMED, Event.CONFERENCE_DISCONNECTING,
    Event.CALL_REMOTE_HELD, Event.CALL_REMOTE_RESUMED,
)  # fmt: skip
_ENDED = (
    Event.CALL_DISCONNECTED, Event.CALL_CANCELED, Event.CALL_REJECTED, Event.CONFERENCE_ENDED,
    Event.CONFERENCE_CANCELED,
)  # fmt: skip
_INVITATIONS = (
    Event.CONFERENCE_INVITATION_SENT, Event.CONFERENCE_INVITATION_ACCEPTED,
    Event.CONFERENCE_INVITATION_REJECTED,
)  # fmt: skip

PAYLOADS: dict[Event, type[Payload] | type[PhoneError] | None] = {
    Event.SESSION_READY: SessionReady,
    Event.SESSION_DISCONNECTED: None,
    Event.SESSION_EXPIRED: SessionNotice,
    Event.GATEWAY_UNREACHABLE: SessionNotice,
    Event.ADDRESS_UPDATED: SessionNotice,
    Event.SESSION_CALL_SWITCHED: CallSwitched,
    Event.DIALING: Dialing,
    Event.ANSWERING: IncomingCall,
    Event.CALL_INCOMING: IncomingCall,
    Event.CONFERENCE_JOINING: IncomingCall,
    Event.CONFERENCE_INVITATION_RECEIVED: IncomingCall,
    **dict.fromkeys(_CALL_DATA, CallEventData),
    **dict.fromkeys(_ENDED, CallEnded),
    Event.CALL_STATE_CHANGED: CallStateChanged,
    Event.CALL_MODIFICATION_IN_PROGRESS: MediaChange,
    Event.CALL_MEDIA_MODIFICATION: MediaChange,
    Event.DTMF_TONE_SENDING: Tone,
    Event.DTMF_TONE_SENT: Tone,
    Event.DTMF_TONE_RECEIVED: Tone,
    Event.CONFERENCE_INVITATION_SENDING: InvitationSending,
    **dict.fromkeys(_INVITATIONS, Invitation),
    Event.CONFERENCE_PARTICIPANT_REMOVED: ParticipantRemoved,
    Event.NOTIFICATION: Notification,
    Event.WARNING: WarningMessage,
    Event.ERROR: PhoneError,
    Event.CONNECTIVITY_ON: None,
    Event.CONNECTIVITY_OFF: None,
}
