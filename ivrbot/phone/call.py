"""A call as a Phone sees it: its state machine, its media (made and negotiated by
:mod:`ivrbot.phone.negotiation`) and its event data. A conference is a
:class:`ConferenceCall`: a call whose :class:`CallKind` names the conference resource, its
requests and its events, and whose event data carries the ``invitations`` and
``participants`` maps (docs/spec/phone-api.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection

from ivrbot.events import CallEventData, CallStateChanged, Event, Tone
from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.tracks import FrameSink, OutboundAudio, Playback
from ivrbot.phone.call_state import ENDED, LIVE, CallState, check_change
from ivrbot.phone.media import CallMedia, MediaHost, RtcMedia
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.phone.phone import Phone

__all__ = ["CALL", "CONFERENCE", "ENDED", "LIVE", "Call", "CallKind", "CallState", "ConferenceCall"]
log = logging.getLogger(__name__)
LOST_GRACE_S = 1.0  # media gone and no word of the call's end after this long: lost
Data = TypeVar("Data", bound=CallEventData)


@dataclass(frozen=True)
class CallKind:
    """What differs between a call and a conference: the wire resource, its requests and
    the events that tell the application."""

    breed: str  # 'call' | 'conference' (getCalls, callType)
    resource: str  # the session's sub-resource: 'calls' | 'conferences'
    action_header: str
    modifications: str  # the body key of a media change
    hold_action: str
    resume_action: str
    connected: Event
    held: Event
    resumed: Event
    disconnecting: Event
    ended: Event
    canceled: Event
    busy: Event | None  # 'User busy' while connecting ends a call as rejected


CALL = CallKind(
    "call", "calls", "x-calls-action", "callsMediaModifications", "initiate-call-hold",
    "initiate-call-resume", Event.CALL_CONNECTED, Event.CALL_HELD, Event.CALL_RESUMED,
    Event.CALL_DISCONNECTING, Event.CALL_DISCONNECTED, Event.CALL_CANCELED, Event.CALL_REJECTED,
)  # fmt: skip
CONFERENCE = CallKind(
    "conference", "conferences", "x-conference-action", "conferenceModifications",
    "initiate-hold", "initiate-resume", Event.CONFERENCE_CONNECTED, Event.CONFERENCE_HELD,
    Event.CONFERENCE_RESUMED, Event.CONFERENCE_DISCONNECTING, Event.CONFERENCE_ENDED,
    Event.CONFERENCE_CANCELED, None,
)  # fmt: skip


class Call(MediaHost):
    """One call of a Phone. ``play()`` speaks into it; ``remote_media`` hears it."""

    kind = CALL

    def __init__(
        self,
        phone: Phone,
        index: int,
        direction: str,
        peer: str,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: FrameSink | None = None,
        on_lost: Callable[[Call], Awaitable[None]] | None = None,
    ) -> None:
        self.phone = phone
        self.index = index
        self.direction = direction  # 'outgoing' | 'incoming'
        self.peer = peer
        self.media_type = media_type
        self.id: str | None = None  # the gateway's call id
        self.state = CallState.CREATED
        self.end_reason = ""
        # held by the Phone itself (second call, switch): resumed when the call in front
        # ends. Part of the held state: set on entering it, cleared on leaving (set_state)
        self.auto_held = False
        # the far end holds the call (call:remote-held; told only to a Phone that declared
        # its hold audio, see Phone(hold_audio=...))
        self.remote_held = False
        self.pending_mod: tuple[str, str] | None = None  # (modId, new media type) offered to us
        self._mod_results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.local_media: MediaStreamTrack = local_media or OutboundAudio()
        self.remote_media = remote_media
        self.media: CallMedia | None = None  # made by the negotiation's first offer or answer
        self.far_offer: str | None = None  # the far end's offer not yet answered (negotiation)
        self.media_up = asyncio.Event()
        self.ended = asyncio.Event()
        self._on_lost = on_lost
        self._tasks = TaskSet(f"{phone.name} call {index}")
        self._closed = False

    @property
    def breed(self) -> str:
        return self.kind.breed

    # state ---------------------------------------------------------------------------------
    def set_state(self, new: CallState, auto: bool = False) -> None:
        """The one place a call changes state: checks the change against the table
        (:mod:`ivrbot.phone.call_state`), logs ``old -> new`` and publishes
        call:state-changed. ``auto``: held by the Phone itself (entering HELD only)."""
        old = self.state
        if not check_change(f"{self.phone.name} call {self.index}", old, new):
            return
        self.state = new
        if new == CallState.HELD and old != CallState.MODIFICATION_ACCEPTED:
            self.auto_held = auto
        elif new not in (CallState.HELD, CallState.MODIFICATION_ACCEPTED):
            self.auto_held = False
        changed = self.event_data(CallStateChanged, old_state=old.value, new_state=new.value)
        self.phone.publish(Event.CALL_STATE_CHANGED, changed)
        if new in ENDED:
            self.ended.set()

    def event_data(self, payload: type[Data] = CallEventData, **fields: Any) -> Data:  # type: ignore[assignment]
        """This call's event data as ``payload`` (CallEventData or one that extends it,
        e.g. CallEnded with ``message``)."""
        outgoing = self.direction == "outgoing"
        user = self.phone.user_id or ""
        return payload(
            index=self.index,
            call_type=self.kind.breed,
            media_type=self.media_type,
            to=self.peer if outgoing else user,
            from_=user if outgoing else self.peer,
            generator="initiator" if outgoing else "receiver",
            **self._more_data(),
            **fields,
        )

    def _more_data(self) -> dict[str, Any]:
        return {}

    def mod_result(self, mod_id: str) -> asyncio.Future[dict[str, Any]]:
        """The ``mod-terminated`` event of ``mod_id`` (it may come before the reply that
        named the modId: the channel and the request race)."""
        future = self._mod_results.get(mod_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._mod_results[mod_id] = future
        return future

    def end_message(self, message: str) -> str:
        """What call:disconnected (conference:ended) says when this side ends the call."""
        return message

    # media ---------------------------------------------------------------------------------
    def play(self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "") -> Playback:
        """Queue audio to send to the far end (only when local media is ivrbot's own track)."""
        if not isinstance(self.local_media, OutboundAudio):
            raise TypeError("this call sends a custom local_media track; play into that track")
        return self.local_media.play(pcm, rate, label)

    def stop_playback(self) -> None:
        if isinstance(self.local_media, OutboundAudio):
            self.local_media.stop_playback()

    @property
    def pc(self) -> RTCPeerConnection:
        """The peer connection of a call over WebRTC (not of an in-process call)."""
        if not isinstance(self.media, RtcMedia):
            raise AttributeError("this call has no WebRTC peer connection")
        return self.media.pc

    @property
    def media_flows(self) -> bool:
        return self.media is not None and self.media.up

    # what the media reports (MediaHost) --------------------------------------------------
    @property
    def media_name(self) -> str:
        return f"{self.phone.name} call {self.index}"

    def on_media_frame(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        return self.remote_media(frame) if self.remote_media is not None else None

    def on_media_key(self, tone: str, method: str) -> None:
        self.phone.publish(
            Event.DTMF_TONE_RECEIVED, self.event_data(Tone, tone=tone, method=method)
        )

    def on_media_up(self) -> None:
        self.media_up.set()

    def on_media_lost(self) -> None:
        if not self._closed:
            self._tasks.spawn(self._lost_unless_ended())

    async def _lost_unless_ended(self) -> None:
        """The media went away: when the gateway ends a call it closes its side right after
        telling so on the event channel, and either may arrive first. Lost only if the call
        has not ended a moment later."""
        try:
            await asyncio.wait_for(self.ended.wait(), LOST_GRACE_S)
        except TimeoutError:
            if self._on_lost is not None:
                await self._on_lost(self)

    async def send_dtmf(self, tones: str, gap_ms: int) -> bool:
        return self.media is not None and await self.media.send_dtmf(tones, gap_ms)

    async def close_media(self) -> None:
        if self._closed:
            return
        self._closed = True
        for future in self._mod_results.values():
            future.cancel()
        self.local_media.stop()
        if self.media is not None:
            await self.media.close()
        self._tasks.cancel_all()

    def to_info(self) -> dict[str, object]:
        """What ``get_calls()`` lists for this call."""
        return {
            "index": self.index,
            "state": self.state.value,
            "breed": "call",
            "type": self.media_type,
            "peer": self.peer,
        }


class ConferenceCall(Call):
    """A conference as this Phone sees it: hosted (``hosting``) or joined. Both maps are
    keyed by the participant's URI (``sip:bob@ivrbot.local``, ``tel:+5550001001``) with
    values ``{participant, status}``:

    - ``participants``: who is in the conference or invited to it; status ``invited`` or
      ``joined``. An entry goes when the participant is removed, leaves or declines.
    - ``invitations``: every invitation sent; status ``pending``, ``accepted``, ``rejected``,
      ``canceled``, ``removed`` or ``left``.
    """

    kind = CONFERENCE

    def __init__(
        self,
        phone: Phone,
        index: int,
        direction: str,
        peer: str,
        hosting: bool,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: FrameSink | None = None,
        on_lost: Callable[[Call], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(
            phone, index, direction, peer, media_type, local_media, remote_media, on_lost
        )
        self.hosting = hosting
        self.invitations: dict[str, dict[str, str]] = {}
        self.participants: dict[str, dict[str, str]] = {}

    def _more_data(self) -> dict[str, Any]:
        return {
            "invitations": {k: dict(v) for k, v in self.invitations.items()},
            "participants": {k: dict(v) for k, v in self.participants.items()},
        }

    def end_message(self, message: str) -> str:
        return "Conference ended" if self.hosting else "Call terminated"

    def to_info(self) -> dict[str, object]:
        return {
            "index": self.index,
            "state": self.state.value,
            "breed": "conference",
            "type": self.media_type,
            "participants": {k: dict(v) for k, v in self.participants.items()},
        }

    def set_participant(self, uri: str, status: str | None, invitation: str | None) -> None:
        """Update both maps (``status`` None: ``uri`` is no longer a participant)."""
        if status is None:
            self.participants.pop(uri, None)
        else:
            self.participants[uri] = {"participant": uri, "status": status}
        if invitation is not None:
            self.invitations[uri] = {"participant": uri, "status": invitation}
