"""A call as a Phone sees it: its state machine, media and event data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection

from ivrbot.events import CallEventData, Event
from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.local_link import LocalLink
from ivrbot.media.tracks import FrameSink, OutboundAudio, Playback
from ivrbot.phone.media import CallMedia, LocalMedia, MediaHost, RtcMedia
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.phone.core import PhoneCore

log = logging.getLogger(__name__)
LOST_GRACE_S = 1.0  # media gone and no word of the call's end after this long: lost


class CallState(StrEnum):
    CREATED = "created"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"
    REJECTED = "rejected"
    CANCELED = "canceled"
    HELD = "held"
    MOVE_INITIATED = "move-initiated"
    MOVE_FAILED = "move-failed"
    MOVED = "moved"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"
    MODIFICATION_INITIATED = "modification-initiated"
    MODIFICATION_ACCEPTED = "modification-accepted"


# states after which the call is gone from this Phone
ENDED = {
    CallState.DISCONNECTED,
    CallState.REJECTED,
    CallState.CANCELED,
    CallState.MOVED,
    CallState.TRANSFERRED,
}


class Call(MediaHost):
    """One call of a Phone. ``play()`` speaks into it; ``remote_media`` hears it."""

    def __init__(
        self,
        phone: PhoneCore,
        index: int,
        direction: str,
        peer: str,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: FrameSink | None = None,
    ) -> None:
        self.phone = phone
        self.index = index
        self.direction = direction  # 'outgoing' | 'incoming'
        self.peer = peer
        self.media_type = media_type
        self.breed = "call"  # 'call' | 'conference'
        self.id: str | None = None  # the gateway's call id
        self.state = CallState.CREATED
        self.remote_sdp: str | None = None
        self.end_reason = ""
        self.auto_held = False  # held by the Phone itself (second call, switch): resume later
        self.pending_mod: tuple[str, str] | None = None  # (modId, new media type) offered to us
        self.mod_offer: str | None = None  # the gateway's SDP offer that came with it
        self._mod_results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.local_media: MediaStreamTrack = local_media or OutboundAudio()
        self.remote_media = remote_media
        self.media: CallMedia | None = None  # made by the first offer or answer
        self.media_up = asyncio.Event()
        self.ended = asyncio.Event()
        self._tasks = TaskSet(f"{phone.name} call {index}")
        self._closed = False

    # state ---------------------------------------------------------------------------------
    def set_state(self, new: CallState) -> None:
        """The one place a call changes state: logs it and publishes call:state-changed."""
        old, self.state = self.state, new
        if old == new:
            return
        log.info("%s call %d: %s -> %s", self.phone.name, self.index, old, new)
        self.phone.publish(
            Event.CALL_STATE_CHANGED,
            self.event_data(oldState=old.value, newState=new.value),
        )
        if new in ENDED:
            self.ended.set()

    def event_data(self, **extra: object) -> CallEventData:
        outgoing = self.direction == "outgoing"
        return CallEventData(
            index=self.index,
            call_type="call",
            media_type=self.media_type,
            to=self.peer if outgoing else self.phone.user_id or "",
            from_=self.phone.user_id or "" if outgoing else self.peer,
            generator="initiator" if outgoing else "receiver",
            extra=tuple(extra.items()),
        )

    def mod_result(self, mod_id: str) -> asyncio.Future[dict[str, Any]]:
        """The ``mod-terminated`` event of ``mod_id`` (it may come before the reply that
        named the modId: the channel and the request race)."""
        future = self._mod_results.get(mod_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._mod_results[mod_id] = future
        return future

    # media ---------------------------------------------------------------------------------
    def play(self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "") -> Playback:
        """Queue audio to send to the far end (only when local media is ivrbot's own track)."""
        if not isinstance(self.local_media, OutboundAudio):
            raise TypeError("this call sends a custom local_media track; play into that track")
        return self.local_media.play(pcm, rate, label)

    def stop_playback(self) -> None:
        if isinstance(self.local_media, OutboundAudio):
            self.local_media.stop_playback()

    # negotiation (the media itself is in ivrbot.phone.media) -----------------------------
    async def offer(self) -> str:
        """This call's first offer: in-process media for an in-process Phone."""
        return await self.ensure_media().offer()

    def ensure_media(self) -> CallMedia:
        """The call's media (made now, of the Phone's kind, if no offer or answer made it)."""
        return self._new_media(self.phone.in_process)

    async def answer(self, offer: str) -> str:
        """Answer the far end's offer (in-process media when the offer names a local link)."""
        media = self.media or self._new_media(LocalLink.is_local(offer))
        return await media.answer(offer)

    def _new_media(self, local: bool) -> CallMedia:
        if self.media is None:
            if local:
                self.media = LocalMedia(self, self.local_media)
            else:
                phone = self.phone
                self.media = RtcMedia(
                    self, self.local_media, phone.ice_servers, phone.ice_transport
                )
        return self.media

    @property
    def pc(self) -> RTCPeerConnection:
        """The peer connection of a call over WebRTC (not of an in-process call)."""
        if not isinstance(self.media, RtcMedia):
            raise AttributeError("this call has no WebRTC peer connection")
        return self.media.pc

    # what the media reports (MediaHost) --------------------------------------------------
    @property
    def media_name(self) -> str:
        return f"{self.phone.name} call {self.index}"

    def on_media_frame(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        return self.remote_media(frame) if self.remote_media is not None else None

    def on_media_key(self, tone: str, method: str) -> None:
        self.phone.publish(Event.DTMF_TONE_RECEIVED, self.event_data(tone=tone, method=method))

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
            await self.phone._media_failed(self)

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


SinkFactory = Callable[[Call], FrameSink | None]
