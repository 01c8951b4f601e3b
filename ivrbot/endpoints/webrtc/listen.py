"""Listening in: an operator hears a live call through a receive-only leg of its own.

The gateway already sends each party of a call what it should hear (the other party,
prompts, music on hold). A :class:`CallTap` reads those (the ``taps`` of each leg's outbound
track: every 20 ms it sends) and mixes them into the listener's outbound track, so the
listener hears both parties as they hear each other, whoever is bridged to whom. Nothing
comes back: the listener's leg has no ``on_frame`` and its keys go nowhere, so what the
operator says (if the browser sends it at all) reaches no one.

The listener follows the call's legs as they were when it started: it ends when one of
them closes (the call ended, moved or was transferred), when its own peer goes away, or
when :meth:`Listeners.stop` is called.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from dataclasses import dataclass, field

import numpy as np

from ivrbot.core.endpoints import Endpoint
from ivrbot.core.switch import Switch
from ivrbot.endpoints.webrtc.leg import Leg
from ivrbot.media.frames import WIRE_SAMPLES, frame_from_pcm
from ivrbot.media.tracks import OutboundAudio, PcmTap
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)

LAG_TICKS = 3  # a source this far ahead of another (that sends nothing) goes out alone


class CallTap:
    """What ``sources`` send, mixed 20 ms at a time into ``sink``."""

    def __init__(self, sources: list[OutboundAudio], sink: OutboundAudio) -> None:
        self.sink = sink
        self._buffers = [np.zeros(0, np.int16) for _ in sources]
        self._pts = 0
        self._taps: list[tuple[OutboundAudio, PcmTap]] = []
        for index, source in enumerate(sources):
            tap = functools.partial(self._feed, index)
            source.taps.append(tap)
            self._taps.append((source, tap))

    def _feed(self, index: int, pcm: np.ndarray) -> None:
        limit = LAG_TICKS * WIRE_SAMPLES
        self._buffers[index] = np.concatenate((self._buffers[index], pcm))[-limit:]
        while all(b.size >= WIRE_SAMPLES for b in self._buffers) or any(
            b.size >= limit for b in self._buffers
        ):
            mixed = np.zeros(WIRE_SAMPLES, np.int32)
            for i, buffer in enumerate(self._buffers):
                part = buffer[:WIRE_SAMPLES]
                mixed[: part.size] += part
                self._buffers[i] = buffer[part.size :]
            pcm_out = np.clip(mixed, -32768, 32767).astype(np.int16)
            self.sink.push(frame_from_pcm(pcm_out, self._pts))
            self._pts += WIRE_SAMPLES

    def remove(self) -> None:
        for source, tap in self._taps:
            if tap in source.taps:
                source.taps.remove(tap)
        self._taps = []


@dataclass
class ListenIn:
    id: str
    call_id: str
    leg: Leg
    tap: CallTap
    watched: list[Endpoint] = field(default_factory=list)


class ListenError(LookupError):
    """No live call to listen to; the message says which."""


class Listeners:
    """The operator's receive-only legs on the calls of one switch."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.active: dict[str, ListenIn] = {}
        self._tasks = TaskSet("listeners")

    async def start(self, call_id: str, offer: str) -> tuple[ListenIn, str]:
        """Answer the operator's ``offer`` with a leg that hears call ``call_id``."""
        call = self.switch.calls.get(call_id)
        parties = [p for p in (call.caller, call.callee) if p is not None] if call else []
        if call is None or not parties:
            raise ListenError(f"no live call {call_id}")
        leg = Leg(f"listener/{call_id}")
        answer = await leg.answer_offer(offer)  # closes the leg if the offer is unusable
        endpoints = [p.leg for p in parties]
        tap = CallTap([e.out for e in endpoints], leg.out)
        listener = ListenIn(secrets.token_hex(6), call_id, leg, tap, endpoints)
        self.active[listener.id] = listener
        self._tasks.spawn(self._watch(listener))
        log.info("listener %s on call %s", listener.id, call_id)
        return listener, answer

    async def _watch(self, listener: ListenIn) -> None:
        ends = [listener.leg.failed, *(e.failed for e in listener.watched)]
        waits = [asyncio.ensure_future(event.wait()) for event in ends]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await self._close(listener)

    async def stop(self, listener_id: str) -> bool:
        listener = self.active.get(listener_id)
        if listener is None:
            return False
        await self._close(listener)
        return True

    async def _close(self, listener: ListenIn) -> None:
        if self.active.pop(listener.id, None) is None:
            return
        listener.tap.remove()
        await listener.leg.close()
        log.info("listener %s on call %s closed", listener.id, listener.call_id)

    async def close(self) -> None:
        for listener in list(self.active.values()):
            await self._close(listener)
        self._tasks.cancel_all()
