"""Phone event names (exactly as in docs/spec/phone-api.md) and their payloads."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


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


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class SessionReady:
    session_id: str
    user_id: str
    timestamp: int = field(default_factory=now_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"sessionId": self.session_id, "userid": self.user_id, "timeStamp": self.timestamp}


@dataclass(frozen=True)
class CallEventData:
    """The call's event data carried by most call events (spec: eventData)."""

    index: int
    call_type: str  # 'call' | 'conference'
    media_type: str
    to: str = ""
    from_: str = ""
    generator: str = ""  # 'initiator' | 'receiver'
    codec: str = ""
    timestamp: int = field(default_factory=now_ms)
    extra: tuple[tuple[str, Any], ...] = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.extra).get(key, default)

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
        out.update(dict(self.extra))
        return out


@dataclass(frozen=True)
class WarningPayload:
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
