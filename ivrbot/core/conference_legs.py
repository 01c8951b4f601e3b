"""What a conference is made of: its legs (one per session), participants, the mix member
of each leg and errors (states and reasons: call_state.py; behaviour: conferences.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import av
import numpy as np

from ivrbot.core.call_state import LEG_CHANGES, LegState, change
from ivrbot.core.endpoints import Endpoint
from ivrbot.core.events import EventPayload, Resource, SessionEvent, Topic
from ivrbot.core.mixer import Member, Mixer, MonoConverter
from ivrbot.core.sessions import Session
from ivrbot.media.frames import frame_from_pcm
from ivrbot.media.recorder import Recorder

PARTICIPANT_ID = re.compile(r"^(sip:[^@\s/:]+@[^@\s/]+|tel:\+\d{1,15})$")


class ConferenceError(Exception):
    """A request the conference's state does not allow (the routes answer 409 SVC8501)."""

    def __init__(self, action: str, why: str) -> None:
        super().__init__(f"{action}: {why}")
        self.action = action
        self.why = why


class NotFound(Exception):
    """No such conference or participant here (the routes answer 404)."""


class LegMember:
    """A gateway leg as a mixer member: received frames in, this member's mix out."""

    def __init__(self, leg: Endpoint, mixer: Mixer, member_id: str) -> None:
        self.leg = leg
        self.mixer = mixer
        self.member_id = member_id
        self._convert = MonoConverter()
        self._member: Member | None = None

    @property
    def attached(self) -> bool:
        return self._member is not None

    def attach(self) -> None:
        member = self.mixer.add(self.member_id, self._send)
        self._member = member

        def receive(frame: av.AudioFrame) -> None:
            member.feed(self._convert(frame))

        self.leg.on_frame = receive

    def detach(self) -> None:
        if self._member is None:
            return
        self._member = None
        self.leg.on_frame = None
        self.mixer.remove(self.member_id)
        self.leg.out.clear_bridged()

    def _send(self, pcm: np.ndarray) -> None:
        self.leg.out.push(frame_from_pcm(pcm, 0))


@dataclass(eq=False)
class ConferenceLeg:
    """One session's view of a conference: its resource id, its media leg, its role."""

    id: str
    session: Session
    leg: Endpoint
    role: str  # 'host' | 'participant'
    conference: GatewayConference
    participant: Participant | None = None
    state: LegState = LegState.CONNECTING
    member: LegMember | None = None
    watcher: asyncio.Task[None] | None = None
    on_end: Callable[[str], Awaitable[None]] | None = None  # a merged call's (see adopt)

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/conferences/{self.id}"

    @property
    def is_host(self) -> bool:
        return self.role == "host"

    def publish(self, payload: EventPayload) -> None:
        about = Resource(Topic.CONFERENCE, self.resource_url)
        self.session.channel.publish(SessionEvent(about, payload))

    def set_state(self, new: LegState) -> None:
        """The one place the leg's state changes (checked against LEG_CHANGES, logged)."""
        if change(f"conference {self.conference.id} leg {self.id}", self.state, new, LEG_CHANGES):
            self.state = new


@dataclass(eq=False)
class Participant:
    """The host's view of one invited identity: the sessions it rings, the one that joined."""

    uri: str
    mod_id: str
    ringing: list[ConferenceLeg] = field(default_factory=list)
    leg: ConferenceLeg | None = None

    @property
    def status(self) -> str:
        return self.leg.state.value if self.leg is not None else LegState.INVITED.value


@dataclass(eq=False)
class GatewayConference:
    id: str
    host_uri: str
    mixer: Mixer
    host: ConferenceLeg | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    started_at: float = 0.0  # the conference service's clock.time() when created
    ended_at: float | None = None
    recorders: list[Recorder] = field(default_factory=list)  # stopped when it ends

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def legs(self) -> list[ConferenceLeg]:
        out = [self.host] if self.host is not None else []
        for p in self.participants.values():
            out += ([p.leg] if p.leg is not None else []) + p.ringing
        return out


def valid_participant_id(pid: str) -> bool:
    """``sip:<user>@<domain>`` or ``tel:+<digits>``."""
    return PARTICIPANT_ID.match(pid) is not None
