"""What a session is told about its calls and conferences: the core's typed events.

The core publishes a :class:`SessionEvent` (what it is about + a typed payload) on the
session's :class:`~ivrbot.core.channel.EventChannel`; the adapters read them: the wire API
turns each into the spec's event object (``ivrbot/wire/serialise.py``, the one place that
spells the wire's names and keys), the SIP connector matches on the payload classes.

One payload class per :class:`EventKind`; its fields are in the order the wire lists them.
A field left ``None`` (or ``False``) is not sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum, auto
from typing import ClassVar


class EventKind(StrEnum):
    """Every kind of event the core publishes (the wire's ``state``)."""

    INVITATION_RECEIVED = auto()  # a call or conference invites this session
    SESSION_OPEN = auto()  # the session's call or conference is up (or rings: provisional)
    SESSION_MODIFIED = auto()  # answered after early media, far hold, transfer, participants
    SESSION_TERMINATED = auto()  # this session's call or conference is over
    MOD_RECEIVED = auto()  # the far end changes the media: an offer to answer
    MOD_TERMINATED = auto()  # a modification (hold, resume, media, invitation) settled
    MOVE_TERMINATED = auto()  # a move of the call to another session settled
    TRANSFER_INITIATED = auto()
    TRANSFER_TERMINATED = auto()


class Topic(StrEnum):
    """What kind of resource an event is about (the wire's ``type``)."""

    CALL = auto()
    CONFERENCE = auto()


@dataclass(frozen=True)
class Resource:
    """A call or conference as one session sees it: ``url`` is its path in that session
    (``/RTC/v1/sessions/{sid}/calls/{cid}``)."""

    topic: Topic
    url: str

    @property
    def id(self) -> str:
        """The call's (or conference's) id in that session."""
        return self.url.rsplit("/", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class EventPayload:
    """What an event says; each subclass is one :class:`EventKind`."""

    kind: ClassVar[EventKind]


@dataclass(frozen=True, kw_only=True)
class InvitationReceived(EventPayload):
    """The session is invited: ``sdp`` is the gateway's offer for its new leg."""

    kind: ClassVar[EventKind] = EventKind.INVITATION_RECEIVED
    from_uri: str
    to_uri: str
    sdp: str


@dataclass(frozen=True, kw_only=True)
class SessionOpen(EventPayload):
    """``sdp``: the gateway's answer to the session's offer, if it has not had it;
    ``provisional``: the call still rings (early media: ringback)."""

    kind: ClassVar[EventKind] = EventKind.SESSION_OPEN
    sdp: str | None = None
    provisional: bool = False


@dataclass(frozen=True, kw_only=True)
class SessionModified(EventPayload):
    """A call: answered after early media (no field), the far end holds or resumes
    (``reason`` 'held' / 'resumed'), transferred to ``from_uri`` (``reason``
    'transferred'). A conference's host: ``participant`` merged in, removed or left
    (``status``; ``mod_id`` names the change, ``reason`` why it left)."""

    kind: ClassVar[EventKind] = EventKind.SESSION_MODIFIED
    mod_id: str | None = None
    participant: str | None = None
    status: str | None = None
    reason: str | None = None
    from_uri: str | None = None


@dataclass(frozen=True, kw_only=True)
class SessionTerminated(EventPayload):
    """Over; no ``reason`` when this session ended it itself."""

    kind: ClassVar[EventKind] = EventKind.SESSION_TERMINATED
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModReceived(EventPayload):
    """The far end changes the media to ``media_type``: ``sdp`` is the gateway's offer."""

    kind: ClassVar[EventKind] = EventKind.MOD_RECEIVED
    mod_id: str
    media_type: str
    sdp: str


@dataclass(frozen=True, kw_only=True)
class ModTerminated(EventPayload):
    """Modification ``mod_id`` settled (``reason`` 'success', or why not); ``sdp`` is the
    gateway's answer to the session's offer. A conference's host: the invitation of
    ``participant`` (``status`` 'joined' when it did)."""

    kind: ClassVar[EventKind] = EventKind.MOD_TERMINATED
    mod_id: str
    reason: str
    participant: str | None = None
    status: str | None = None
    media_type: str | None = None
    sdp: str | None = None


@dataclass(frozen=True, kw_only=True)
class MoveTerminated(EventPayload):
    """The move of the call settled: ``reason`` 'moved', 'failed', or why not."""

    kind: ClassVar[EventKind] = EventKind.MOVE_TERMINATED
    reason: str


@dataclass(frozen=True, kw_only=True)
class TransferInitiated(EventPayload):
    kind: ClassVar[EventKind] = EventKind.TRANSFER_INITIATED
    target_call_id: str


@dataclass(frozen=True, kw_only=True)
class TransferTerminated(EventPayload):
    kind: ClassVar[EventKind] = EventKind.TRANSFER_TERMINATED
    reason: str
    target_call_id: str


PAYLOADS: dict[EventKind, type[EventPayload]] = {
    cls.kind: cls
    for cls in (
        InvitationReceived,
        SessionOpen,
        SessionModified,
        SessionTerminated,
        ModReceived,
        ModTerminated,
        MoveTerminated,
        TransferInitiated,
        TransferTerminated,
    )
}


@dataclass(frozen=True)
class SessionEvent:
    """One event on a session's channel: what it is about, and what it says."""

    about: Resource
    payload: EventPayload

    @property
    def kind(self) -> EventKind:
        return self.payload.kind
