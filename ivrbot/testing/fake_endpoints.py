"""Fake endpoints for unit tests of the call core: no SDP, no sockets, no media stack.

:class:`FakeEndpoints` is an :class:`~ivrbot.core.endpoints.EndpointKinds`: hand it to a
:class:`~ivrbot.core.switch.Switch` or :class:`~ivrbot.core.conferences.Conferences` with a
:class:`~ivrbot.testing.clock.VirtualClock`, and every party's media is a
:class:`FakeEndpoint` that records what it was sent (SDP, keys; its ``out`` is a real
:class:`~ivrbot.media.tracks.OutboundAudio` paced on the virtual clock) and whose media comes
up as told: at once when its negotiation completes (``"up"``), never (``"never"``: the
switch's media timeout decides), or fails then (``"fail"``). A test plays the far party:
:meth:`FakeEndpoint.say` sends audio in, :meth:`~FakeEndpoint.press` a key,
:meth:`~FakeEndpoint.lose` drops its peer.

:func:`login` opens a session whose channel keeps every event published on it
(:class:`RecordingChannel`), so a test asserts on what the session was told, in order.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import numpy as np

from ivrbot.core.channel import EventChannel
from ivrbot.core.endpoints import EndpointBase, SdpError
from ivrbot.core.events import SessionEvent
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.media.frames import PTIME_S, WIRE_RATE, frame_from_pcm, pcm_from_frame
from ivrbot.testing.clock import VirtualClock
from ivrbot.wire.serialise import event_object

Media = Literal["up", "never", "fail"]


class FakeEndpoint(EndpointBase):
    """One party's media, as the switch sees it; the test is the far end."""

    def __init__(self, name: str, clock: VirtualClock, media: Media) -> None:
        super().__init__(name, clock)
        self.clock = clock
        self.media = media
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.sdp_in: list[str] = []  # offers and answers it was given, in order
        self.keys_sent: list[str] = []  # keypad tones the gateway sent it
        self._pts = 0

    # negotiation (what the switch does) ------------------------------------------------------
    async def make_offer(self) -> str:
        return f"offer from {self.name}"

    async def answer_offer(self, sdp: str) -> str:
        self._take(sdp)
        self._negotiated()
        return f"answer from {self.name}"

    async def accept_answer(self, sdp: str) -> None:
        self._take(sdp)
        self._negotiated()

    async def renegotiate(self, sdp: str) -> str:
        self._take(sdp)
        return f"answer from {self.name}"

    async def reoffer(self) -> str:
        return f"offer from {self.name}"

    async def send_dtmf(self, tones: str) -> None:
        self.keys_sent.append(tones)

    async def close(self) -> None:
        self._start_closing()

    def _take(self, sdp: str) -> None:
        if not sdp:
            raise SdpError("an empty SDP")
        self.sdp_in.append(sdp)

    def _negotiated(self) -> None:
        if self.media == "up":
            self.connected.set()
        elif self.media == "fail":
            self.failed.set()

    # the far end (what the test does) ----------------------------------------------------
    def say(self, pcm: np.ndarray) -> None:
        """The far end sends ``pcm`` (mono int16 at 48 kHz): it goes where the bridge says."""
        self._on_audio(frame_from_pcm(pcm, self._pts, WIRE_RATE))
        self._pts += pcm.size

    def press(self, key: str) -> None:
        """The far end presses ``key`` (an RFC 4733 event)."""
        self._on_key(key, "rfc4733")

    async def hear(self, seconds: float) -> np.ndarray:
        """What the gateway sends the far end over the next ``seconds`` (its ``out``, paced:
        the virtual clock moves on by ``seconds``), mono int16 at 48 kHz."""

        async def read() -> np.ndarray:
            frames = [await self.out.recv() for _ in range(round(seconds / PTIME_S))]
            await self.clock.sleep(PTIME_S)  # the last frame's 20 ms
            return np.concatenate([pcm_from_frame(f) for f in frames])

        return await self.clock.run(read())

    def lose(self) -> None:
        """The far end's peer is gone (it stopped answering, or closed)."""
        self.failed.set()


class FakeEndpoints:
    """Makes :class:`FakeEndpoint` s (an ``EndpointKinds``) on ``clock``. ``media`` is how a
    party's media comes up; ``media_of[user_id]`` overrides it for one identity's parties."""

    def __init__(self, clock: VirtualClock, media: Media = "up") -> None:
        self.clock = clock
        self.media = media
        self.media_of: dict[str, Media] = {}
        self.made: list[FakeEndpoint] = []  # every endpoint made, in order

    def for_session(self, name: str, session: Session) -> FakeEndpoint:
        return self._make(name)

    def _make(self, name: str) -> FakeEndpoint:
        user_id = name.split("/", 1)[0]
        endpoint = FakeEndpoint(name, self.clock, self.media_of.get(user_id, self.media))
        self.made.append(endpoint)
        return endpoint

    def of(self, user_id: str) -> list[FakeEndpoint]:
        """The endpoints made for ``user_id``'s parties, in order."""
        return [e for e in self.made if e.name.split("/", 1)[0] == user_id]


class RecordingChannel(EventChannel):
    """An event channel that also keeps every event published on it, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []  # as the wire sends them (event objects)

    def publish(self, event: SessionEvent) -> None:
        self.events.append(event_object(event))
        super().publish(event)

    def told(self, kind: str = "calls") -> list[tuple[str, str]]:
        """(state, reason or status) of each event of ``kind`` ('calls', 'conferences'),
        in order: what the session was told, e.g. ``("session-terminated", "No answer")``."""
        return [
            (e["state"], e.get("reason") or e.get("status") or "")
            for e in self.events
            if e.get("type") == kind
        ]


def login(sessions: SessionRegistry, user_id: str) -> Session:
    """A session of ``user_id`` whose channel records what it is told (``channel.events``)."""
    session = sessions.create(user_id, f"token of {user_id}", None)
    session.channel = RecordingChannel()
    return session


def told(session: Session, kind: str = "calls") -> list[tuple[str, str]]:
    """What ``session`` (made by :func:`login`) was told: see :meth:`RecordingChannel.told`."""
    return _recording(session).told(kind)


def events(session: Session) -> list[dict[str, Any]]:
    """Every event ``session`` (made by :func:`login`) was told, whole, in order."""
    return _recording(session).events


def _recording(session: Session) -> RecordingChannel:
    channel = session.channel
    assert isinstance(channel, RecordingChannel), "a session made by login()"
    return channel
