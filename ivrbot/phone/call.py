"""A call as a Phone sees it: its state machine, media and event data."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection

from ivrbot.events import CallEventData, Event
from ivrbot.media import rfc4733
from ivrbot.media.frames import WIRE_RATE
from ivrbot.media.peer import new_peer_connection
from ivrbot.media.tracks import FrameSink, OutboundAudio, Playback, pump
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.phone.core import PhoneCore

log = logging.getLogger(__name__)


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


class Call:
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
        self.local_media: MediaStreamTrack = local_media or OutboundAudio()
        self.remote_media = remote_media
        self.pc: RTCPeerConnection = new_peer_connection(phone.ice_servers, phone.ice_transport)
        self.media_up = asyncio.Event()
        self.ended = asyncio.Event()
        self._dtmf: rfc4733.DtmfSender | None = None
        self._tasks = TaskSet(f"{phone.name} call {index}")
        self._closed = False
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_pc_state)

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

    # media ---------------------------------------------------------------------------------
    def play(self, pcm: np.ndarray, rate: int = WIRE_RATE, label: str = "") -> Playback:
        """Queue audio to send to the far end (only when local media is ivrbot's own track)."""
        if not isinstance(self.local_media, OutboundAudio):
            raise TypeError("this call sends a custom local_media track; play into that track")
        return self.local_media.play(pcm, rate, label)

    def stop_playback(self) -> None:
        if isinstance(self.local_media, OutboundAudio):
            self.local_media.stop_playback()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":
            return
        transceiver = next((t for t in self.pc.getTransceivers() if t.kind == "audio"), None)
        if transceiver is not None:
            rfc4733.on_telephone_event(transceiver.receiver, self._on_telephone_event)
        self._tasks.spawn(pump(track, self._on_frame))

    def _on_frame(self, frame: av.AudioFrame) -> Awaitable[None] | None:
        return self.remote_media(frame) if self.remote_media is not None else None

    def _on_telephone_event(self, event: rfc4733.DtmfEvent) -> None:
        self.phone.publish(
            Event.DTMF_TONE_RECEIVED, self.event_data(tone=event.tone, method="rfc4733")
        )

    def _on_pc_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.media_up.set()
        elif self.pc.connectionState == "failed":
            self._tasks.spawn(self.phone._media_failed(self))

    async def send_dtmf(self, tones: str, gap_ms: int) -> bool:
        transceiver = next((t for t in self.pc.getTransceivers() if t.kind == "audio"), None)
        if transceiver is None:
            return False
        if self._dtmf is None:
            self._dtmf = rfc4733.DtmfSender(transceiver.sender)
        if not self._dtmf.can_insert_dtmf:
            return False
        await self._dtmf.send(tones, gap_ms=gap_ms)
        return True

    async def close_media(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.local_media.stop()
        try:
            await self.pc.close()
        finally:
            rfc4733.release_peer(self.pc)
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
