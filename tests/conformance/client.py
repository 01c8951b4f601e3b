"""A minimal client of the gateway's wire API, written from spec/rtc-api.md alone.

It is what a client of the historical carrier service does, and nothing more: raw HTTP
(aiohttp), one event channel (the long-poll ``GET .../events`` or the WebSocket of ``POST
.../websockets``) and one aiortc peer connection per call or conference, whose SDP it
offers and answers itself. It is deliberately not the Phone (ivrbot.phone): the
conformance tests check the gateway against the table, not against our own client.

Each peer sends a steady sine of its own frequency and records what it receives, so a
test can measure who hears whom (Goertzel, ivrbot/testing/audio.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCSessionDescription

from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.frames import pcm_from_frame
from ivrbot.media.tracks import OutboundAudio, pump
from ivrbot.phone.transport import Response
from ivrbot.testing.audio import sine, tone_dbfs

RTC = "/RTC/v1"
EVENT_TIMEOUT_S = 10.0
_TONES: dict[float, np.ndarray] = {}


def sdp_direction(sdp: str) -> str:
    """The direction attribute of the SDP's audio section (sendrecv when none is given)."""
    audio = sdp.split("m=audio", 1)[1].split("\nm=", 1)[0]
    found = re.search(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", audio, re.MULTILINE)
    return found.group(1) if found else "sendrecv"


class Peer:
    """One aiortc peer connection: sends a sine at ``freq``, records what it receives."""

    def __init__(self, freq: float) -> None:
        self.freq = freq
        self.pc = new_peer_connection()
        self.out = OutboundAudio()
        if freq not in _TONES:
            _TONES[freq] = sine(freq, 60.0, dbfs=-12.0)
        self.out.play(_TONES[freq], loop=True)
        self.received: list[tuple[float, np.ndarray]] = []  # (arrival time, mono PCM)
        self._pumps: list[asyncio.Task[None]] = []
        self._track_added = False
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self._pumps.append(asyncio.ensure_future(pump(track, self._record)))

    def _record(self, frame: av.AudioFrame) -> None:
        self.received.append((time.monotonic(), pcm_from_frame(frame)))

    def _add_track(self) -> None:
        if not self._track_added:
            self.pc.addTrack(self.out)
            self._track_added = True

    async def offer(self, direction: str = "sendrecv") -> str:
        """A (new) offer with every candidate in it (no trickle)."""
        self._add_track()
        for transceiver in self.pc.getTransceivers():
            transceiver.direction = direction
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        self._add_track()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def apply_answer(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    def level(self, freq: float, seconds: float = 0.8) -> float:
        """dBFS of ``freq`` in what arrived over the last ``seconds``; -120 when (almost)
        nothing arrived then (a peer the gateway sends nothing to hears nothing)."""
        since = time.monotonic() - seconds
        recent = [pcm for t, pcm in self.received if t >= since]
        if len(recent) < 0.5 * seconds / 0.02:
            return -120.0
        return tone_dbfs(np.concatenate(recent), freq)

    async def close(self) -> None:
        self.out.stop()
        await self.pc.close()
        for task in self._pumps:
            task.cancel()


class Client:
    """One logged-in session of the wire API with its event channel (``channel``:
    ``longpoll`` or ``websocket``); its events are kept in arrival order."""

    def __init__(self, base_url: str, channel: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.channel = channel
        self.http = aiohttp.ClientSession()
        self.token = ""
        self.session = ""  # /RTC/v1/sessions/{sid}
        self.events: list[dict[str, Any]] = []
        self._taken: set[int] = set()  # indexes of events a test has looked at
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None
        self.peers: list[Peer] = []

    # HTTP ------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if auth and self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body) if body is not None else None
        async with self.http.request(
            method, self.base_url + path, data=data, headers=all_headers
        ) as resp:
            raw = await resp.read()
            content_type = resp.headers.get("Content-Type", "")
            parsed = json.loads(raw) if raw and "json" in content_type else raw.decode()
            return Response(resp.status, dict(resp.headers), parsed)

    async def login(self, app_scope: str, user_id: str) -> None:
        reply = await self.request("POST", "/tokens", {"app_scope": app_scope}, auth=False)
        assert reply.status == 200, reply
        self.token = reply.body["access_token"]
        reply = await self.request("PUT", f"{RTC}/userIds/{user_id}")
        assert reply.status in (200, 201, 204), reply
        body = {
            "session": {
                "mediaType": "dtls-srtp",
                "ice": "true",
                "services": ["ip_voice_call", "ip_video_call"],
            }
        }
        reply = await self.request("POST", f"{RTC}/sessions", body)
        assert reply.status == 201, reply
        location = reply.headers["Location"]
        # the historical client takes the session id as path segment 4 of the header
        assert re.fullmatch(rf"{RTC}/sessions/[^/]+", location), location
        assert reply.headers["x-expires"].isdigit()
        self.session = location
        await self._open_channel()

    async def _open_channel(self) -> None:
        if self.channel == "longpoll":
            self._reader = asyncio.ensure_future(self._long_poll())
            return
        reply = await self.request("POST", f"{self.session}/websockets")
        assert reply.status == 201, reply
        ws = await self.http.ws_connect(
            self.base_url + reply.headers["Location"],
            headers={"Authorization": f"Bearer {self.token}"},
        )
        self._reader = asyncio.ensure_future(self._read_websocket(ws))

    async def _long_poll(self) -> None:
        while True:
            reply = await self.request("GET", f"{self.session}/events")
            if reply.status == 204:
                continue
            if reply.status != 200:
                return
            await self._arrive(reply.body)

    async def _read_websocket(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._arrive(json.loads(msg.data))
        finally:
            await ws.close()

    async def _arrive(self, body: dict[str, Any]) -> None:
        async with self._arrived:
            for item in body["events"]["eventList"]:
                self.events.append(item["eventObject"])
            self._arrived.notify_all()

    # events -----------------------------------------------------------------------------
    def _untaken(self, resource: str) -> list[int]:
        return [
            i
            for i, e in enumerate(self.events)
            if i not in self._taken and e.get("resourceURL") == resource
        ]

    async def next_event(self, resource: str, timeout: float = EVENT_TIMEOUT_S) -> dict[str, Any]:
        """The next event about ``resource`` (in arrival order) that no test took yet."""
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: bool(self._untaken(resource)))
            index = self._untaken(resource)[0]
            self._taken.add(index)
            return self.events[index]

    async def invitation(self, kind: str = "calls") -> dict[str, Any]:
        """The next ``invitation-received`` of ``kind`` for this session."""

        def find() -> int | None:
            return next(
                (
                    i
                    for i, e in enumerate(self.events)
                    if i not in self._taken
                    and e.get("state") == "invitation-received"
                    and e.get("type") == kind
                ),
                None,
            )

        async with asyncio.timeout(EVENT_TIMEOUT_S), self._arrived:
            await self._arrived.wait_for(lambda: find() is not None)
            index = find()
            assert index is not None
            self._taken.add(index)
            return self.events[index]

    async def nothing_more(self, resource: str, wait: float = 0.3) -> None:
        """Fails if an event about ``resource`` arrives that the test did not expect."""
        await asyncio.sleep(wait)
        extra = [self.events[i] for i in self._untaken(resource)]
        assert not extra, f"unexpected events for {resource}: {extra}"

    # media -------------------------------------------------------------------------------
    def peer(self, freq: float) -> Peer:
        peer = Peer(freq)
        self.peers.append(peer)
        return peer

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        for peer in self.peers:
            await peer.close()
        if self.session:
            await self.request("DELETE", self.session)
        await self.http.close()
