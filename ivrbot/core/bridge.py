"""Bridging: which leg hears which. Re-bridging is how hold, transfer and move will work."""

from __future__ import annotations

import logging

from ivrbot.core.endpoints import Endpoint
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)


class Bridge:
    """Two legs hearing each other; keypad tones from one are sent to the other (RFC 4733)."""

    def __init__(self, a: Endpoint, b: Endpoint) -> None:
        self.a, self.b = a, b
        self._tasks = TaskSet(f"bridge {a.name} <-> {b.name}")
        a.on_frame, b.on_frame = b.out.push, a.out.push
        a.on_dtmf = lambda tone: self._forward(b, tone)
        b.on_dtmf = lambda tone: self._forward(a, tone)
        log.info("bridged %s <-> %s", a.name, b.name)

    def _forward(self, to: Endpoint, tone: str) -> None:
        self._tasks.spawn(to.send_dtmf(tone))

    def unbridge(self) -> None:
        for leg in (self.a, self.b):
            leg.on_frame = None
            leg.on_dtmf = None
            leg.out.clear_bridged()
        self._tasks.cancel_all()
        log.info("unbridged %s <-> %s", self.a.name, self.b.name)
