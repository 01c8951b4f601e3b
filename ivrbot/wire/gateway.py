"""The gateway's state: settings, store, tokens, rate limits, sessions and the call switch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ivrbot import call_events
from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import Settings
from ivrbot.core.conferences import Conferences
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.core.switch import Switch, SwitchCall
from ivrbot.endpoints.kinds import MediaEndpoints
from ivrbot.store.base import CallRecord, Store
from ivrbot.store.nodes import node_alive, this_node
from ivrbot.store.sqlite import SqliteStore
from ivrbot.wire.access import Access
from ivrbot.wire.auth import TokenService
from ivrbot.wire.ratelimit import RateLimiter
from ivrbot.wire.verify import Verifications

if TYPE_CHECKING:
    from ivrbot.endpoints.workers.pool import WorkerPool
    from ivrbot.wire.in_process import InProcessWire

log = logging.getLogger(__name__)


class Gateway:
    """Everything the routes share: settings, tokens, sessions, the call switch."""

    def __init__(self, settings: Settings, clock: Clock = REAL_CLOCK) -> None:
        self.settings = settings
        self.clock = clock  # one clock for sessions, the switch and conferences
        # the pool users associate from: the settings', and the numbers of the flows served
        self.virtual_numbers: list[str] = list(settings.virtual_numbers)
        self.endpoints = MediaEndpoints(settings.jitter_prefetch)
        self.endpoints.set_peer_timeout(settings.peer_timeout_s)
        self.store: Store = SqliteStore(settings.db)
        self.tokens = TokenService(self.store, settings, clock)
        self.access = Access(settings, self.tokens)
        self.verifications = Verifications(settings, clock)
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst, clock)
        self.sessions = SessionRegistry(settings.session_ttl_s, clock)
        self.switch = Switch(
            self.sessions, self.endpoints, ring_timeout_s=settings.ring_timeout_s, clock=clock
        )
        self.switch.on_call_changed = self.record_call
        self._open_calls: dict[str, CallRecord] = {}  # records of calls in progress, by id
        self.node = this_node()
        settled = self.store.settle_interrupted(clock.time(), node_alive)
        if settled:
            log.warning("%d call records were left open by a process that stopped: "
                        "marked 'interrupted'", settled)  # fmt: skip
        self.conferences = Conferences(self.sessions, self.endpoints, clock)
        self.switch.conferences = self.conferences  # calls merge into them
        self.workers: WorkerPool | None = None  # media worker processes (ivrbot/workers)
        # the routes for a client in this process (a bot attached inside): set by make_app
        self.in_process: InProcessWire | None = None
        self.websockets: set[web.WebSocketResponse] = set()
        self._writes: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """At start-up, once: revoke what this configuration no longer allows, and start
        the session expiry task."""
        await self.tokens.startup()
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def end_calls(self) -> None:
        """At shutdown, before the server waits for its connections: calls and conferences
        end, sessions go, event channels close."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        await self.conferences.close()
        await self.switch.close()
        for session in self.sessions:
            self.sessions.remove(session.id)
        for ws in list(self.websockets):
            await ws.close()

    async def close(self) -> None:
        """Last: the call records still being written, then the store."""
        await self.end_calls()  # a no-op when shutdown has ended them
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self.store.close()

    # call records --------------------------------------------------------------------------
    def record_call(self, call: SwitchCall) -> None:
        """The switch's ``on_call_changed``: write the call record (open while the call is in
        progress, completed when it ends). Writes are scheduled, in order."""
        ended = call.ended_at
        before = self._open_calls.get(call.id)
        call_events.gateway_call(call, known=before is not None)  # log line and metrics
        record = CallRecord(
            id=call.id,
            from_uri=call.from_uri,
            to_uri=call.to_uri,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=ended,
            reason=str(call.reason) if ended else "",
            duration=round(ended - call.answered_at, 3) if ended and call.answered_at else 0.0,
            # a transfer or merge takes the parties away before the end: keep their ids
            caller_leg=call.caller.id if call.caller else before.caller_leg if before else "",
            callee_leg=call.callee.id if call.callee else before.callee_leg if before else "",
            node=self.node,
        )
        if ended is None:
            self._open_calls[call.id] = record
        else:
            self._open_calls.pop(call.id, None)
        task = asyncio.get_running_loop().create_task(self._write_call(record))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write_call(self, record: CallRecord) -> None:
        try:
            await self.store.add_call(record)
        except Exception:
            log.exception("could not store the record of call %s", record.id)

    # session expiry ------------------------------------------------------------------------
    async def _reap(self) -> None:
        period = max(0.2, min(5.0, self.settings.session_ttl_s / 4))
        while True:
            await self.clock.sleep(period)
            try:
                await self.expire_sessions()
                self.tokens.prune()
            except Exception:
                log.exception("session expiry failed")

    async def expire_sessions(self, now: float | None = None) -> list[Session]:
        """End the calls of sessions past their expiry and remove them (next request: 404)."""
        now = self.clock.time() if now is None else now
        expired = [s for s in self.sessions if s.expires_at <= now]
        for session in expired:
            log.info("session %s of %s expired", session.id, session.user_id)
            await self.end_session(session)
        return expired

    async def end_session(self, session: Session) -> None:
        """Log a session out: its calls and conferences end, its channel closes."""
        await self.switch.end_session(session)
        if self.workers is not None:
            await self.workers.end_session(session)
        await self.conferences.end_session(session)
        self.sessions.remove(session.id)
