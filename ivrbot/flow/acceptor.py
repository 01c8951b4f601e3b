"""A bot in the gateway's process is its numbers' acceptor: the switch hands it every call
for them, and it names the session to ring. It picks an idle session (logging in another
when none is free) up to ``max_calls`` at once and the process-wide admission limit, and
queues callers past that (ringback, then busy after ``queue_s``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ivrbot import call_events
from ivrbot.flow.admission import Admission
from ivrbot.flow.session_pool import SessionPool
from ivrbot.phone.call import ENDED
from ivrbot.phone.phone import Phone
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.core.sessions import Session
    from ivrbot.core.switch import SwitchCall
    from ivrbot.wire.gateway import Gateway

log = logging.getLogger(__name__)


class Acceptor:
    """Admission of the switch's calls to one bot's sessions (see the module)."""

    def __init__(
        self,
        gateway: Gateway,
        pool: SessionPool,
        admission: Admission,
        max_calls: int,
        queue_s: float,
        label: str,
    ) -> None:
        self.gateway = gateway
        self.pool = pool
        self.admission = admission
        self.max_calls = max_calls
        self.queue_s = queue_s
        self.label = label
        self._tasks = TaskSet(f"{label} acceptor")

    def register(self, user_ids: list[str]) -> None:
        for user_id in user_ids:
            self.gateway.switch.acceptors[user_id] = self

    def unregister(self, user_ids: list[str]) -> None:
        for user_id in user_ids:
            if self.gateway.switch.acceptors.get(user_id) is self:
                del self.gateway.switch.acceptors[user_id]

    async def admit(self, call: SwitchCall) -> Session | None:
        """The switch offers a call for the flow's number: the session to ring, once there
        is room (waiting up to ``queue_s``); None turns the caller away (busy)."""
        pool = self.pool
        room = await self.admission.enter(lambda: len(pool.taken) < self.max_calls, self.queue_s)
        if not room:
            log.warning("%s: no room for a call from %s within %g s: busy",
                        self.label, call.from_uri, self.queue_s)  # fmt: skip
            return None
        try:
            phone = await pool.idle_or_new()
        except Exception:
            await self.admission.leave()
            raise
        session = self.gateway.sessions.get(phone.session_id or "")
        if session is None:  # its session is gone (expired): no place is taken
            await self.admission.leave()
            return None
        pool.taken.add(phone)
        pool.ensure_spare()
        call_events.bot_rung(call)
        return session

    def released(self, session: Session) -> None:
        """The switch did not ring ``session`` after all (the caller went first)."""
        phone = next((p for p in self.pool.taken if p.session_id == session.id), None)
        if phone is not None:
            self._tasks.spawn(self.free(phone))

    async def free(self, phone: Phone) -> None:
        """``phone``'s admitted call is over: its place goes to the next caller."""
        if phone in self.pool.taken and not any(c.state not in ENDED for c in phone.calls):
            self.pool.taken.discard(phone)
            await self.admission.leave()
