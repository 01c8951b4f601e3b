"""Conference rooms a bot hosts, for its Conference steps.

A room is a conference the gateway mixes, hosted by a session of the flow's own number
that exists for the room alone (it turns down the calls that ring it). A Conference step
merges the caller's call into the room (``Phone.merge_call``): callers in the same room
hear each other, and the host's voice is the room's announcer, heard by everyone. A room
opens when its first caller comes and closes when its last one has left.
"""

from __future__ import annotations

import asyncio
import logging

from ivrbot.errors import IvrbotError, PhoneException
from ivrbot.events import Event
from ivrbot.flow.sign_in import SignIn
from ivrbot.media.tracks import Playback
from ivrbot.phone.call import ENDED, CallState, ConferenceCall
from ivrbot.phone.phone import Phone
from ivrbot.speech.tts import Prompt
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)
OPEN_TIMEOUT_S = 10.0
SETTLE_S = 5.0  # the longest wait for the host to see a caller merged into its room


class RoomError(IvrbotError):
    """A room could not be opened (the gateway refused, or its media never came up)."""


class Room:
    """One open room: its host session, its conference, who is in it."""

    def __init__(self, name: str, phone: Phone, conference: ConferenceCall) -> None:
        self.name = name
        self.phone = phone
        self.conference = conference
        self.joining = 0  # Conference steps merging a call into it right now
        self.announcements: list[Playback] = []

    @property
    def id(self) -> str:
        """The conference id a call is merged into."""
        assert self.conference.id is not None
        return self.conference.id

    @property
    def members(self) -> list[str]:
        """Who is in the room now (participant ids; a bot that stayed is one too)."""
        return [p for p, v in self.conference.participants.items() if v["status"] == "joined"]

    @property
    def open(self) -> bool:
        return self.conference.state not in ENDED

    def announce(self, prompt: Prompt, label: str) -> Playback:
        """Say ``prompt`` to everyone in the room."""
        playback = self.conference.play(prompt.pcm, prompt.sample_rate, label=label)
        self.announcements.append(playback)
        return playback


class Rooms:
    """A bot's rooms by name; ``enter`` opens one on demand."""

    def __init__(self, sign_in: SignIn, user_id: str, label: str) -> None:
        self.sign_in = sign_in  # the bot's: in the gateway's process, local media
        self.user_id = user_id  # the flow's number: merging needs the same identity
        self.label = label
        self.rooms: dict[str, Room] = {}
        self._lock = asyncio.Lock()
        self._tasks = TaskSet(f"{label} rooms")

    async def enter(self, name: str) -> Room:
        """The open room ``name`` (opened now if needed), counted as being joined: call
        ``entered(room, merged)`` when the merge is done or has failed."""
        async with self._lock:
            room = self.rooms.get(name)
            if room is None or not room.open:
                room = self.rooms[name] = await self._open(name)
            room.joining += 1
            return room

    def entered(self, room: Room, merged: bool) -> None:
        self._tasks.spawn(self._settle(room, merged))

    async def _settle(self, room: Room, merged: bool) -> None:
        """A merge is over: once the host has seen the newcomer, the room may close when
        it is empty (a room is not closed under a caller the gateway just put in it)."""
        try:
            if merged:
                async with asyncio.timeout(SETTLE_S):
                    while room.open and not room.members:
                        await asyncio.sleep(0.02)
        except TimeoutError:
            log.warning("%s: room %s did not see its new member", self.label, room.name)
        finally:
            room.joining -= 1
        self._close_if_empty(room)

    async def _open(self, name: str) -> Room:
        phone = self.sign_in.phone(f"{self.label}:room:{name}")
        phone.on(Event.CALL_INCOMING, lambda _: self._tasks.spawn(_turn_down(phone)))
        try:
            await self.sign_in.login(phone, self.user_id)
            conference = await phone.start_conference()
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                while conference.state != CallState.CONNECTED:
                    if conference.state in ENDED:
                        raise RoomError(f"room {name}: the gateway ended its conference")
                    await asyncio.sleep(0.02)
        except Exception as exc:
            await phone.close()
            if isinstance(exc, TimeoutError):
                raise RoomError(f"room {name}: its media did not come up") from None
            if isinstance(exc, RoomError):
                raise
            raise RoomError(f"room {name}: {exc}") from exc
        room = Room(name, phone, conference)
        phone.on(Event.CONFERENCE_PARTICIPANT_REMOVED, lambda _: self._close_if_empty(room))
        phone.on(Event.CONFERENCE_ENDED, lambda _: self._forget(room))
        log.info("%s: room %s open (conference %s)", self.label, name, room.id)
        return room

    def _close_if_empty(self, room: Room) -> None:
        if room.open and not room.joining and not room.members:
            self._tasks.spawn(self._close(room))

    async def _close(self, room: Room) -> None:
        async with self._lock:  # not while a Conference step is joining it
            if room.joining or room.members or not room.open:
                return
            self._forget(room)
            log.info("%s: room %s is empty: closing it", self.label, room.name)
            await room.phone.close()

    def _forget(self, room: Room) -> None:
        if self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    async def close(self) -> None:
        self._tasks.cancel_all()
        for room in list(self.rooms.values()):
            self._forget(room)
            await room.phone.close()


async def _turn_down(phone: Phone) -> None:
    """A room's session takes no calls (every session of the number rings)."""
    try:
        await phone.reject()
    except PhoneException:  # answered elsewhere meanwhile
        pass
