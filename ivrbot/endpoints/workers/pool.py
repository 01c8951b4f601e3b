"""The gateway's side: media worker processes started, watched, chosen and talked to."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivrbot.config import Settings, child_environment
from ivrbot.core.actions import CallAction
from ivrbot.core.call_state import Reason
from ivrbot.core.events import Resource, SessionEvent, SessionTerminated, Topic
from ivrbot.core.relayed import RelayedLeg
from ivrbot.core.sessions import Session
from ivrbot.endpoints.workers.link import Link, Message, WorkerGone
from ivrbot.errors import UserError
from ivrbot.metrics import watch_workers
from ivrbot.numbers import identity_candidates
from ivrbot.store.nodes import node_alive
from ivrbot.tasks import TaskSet
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.http import ApiError
from ivrbot.wire.serialise import parse_event_object

log = logging.getLogger("ivrbot.serve.workers")  # an operator logger (ivrbot.logs)
START_TIMEOUT_S = 180.0  # flows' prompts synthesised and speech models loaded
RESTART_DELAYS_S = (0.5, 2.0, 10.0, 30.0)  # a worker dying again soon after it started


class WorkerStartError(UserError):
    """A media worker did not start; the message says why (its own error)."""


class MediaWorker:
    """One worker process, and the calls the gateway relayed to it."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.name = f"media worker {index}"
        self.process: asyncio.subprocess.Process | None = None
        self.link: Link | None = None
        self.serves: set[str] = set()  # identities whose calls it takes
        self.legs: dict[tuple[str, str], RelayedLeg] = {}  # (session id, call id) -> call
        self.placing = 0  # calls being placed on it (not yet in legs)
        self._ended_early: set[tuple[str, str]] = set()  # ended before place() had the reply
        self.live: list[dict[str, Any]] = []  # its dashboard's live calls, as it last sent
        self.ready = asyncio.Event()
        self.started_at = 0.0
        self.restarts = 0  # quick restarts in a row (the delay before the next grows)
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def alive(self) -> bool:
        return self.ready.is_set() and self.link is not None and not self.link.closed.is_set()

    async def start(self) -> None:
        """Start the process and wait until it serves its flows (WorkerStartError if not)."""
        mine, theirs = socket.socketpair()
        self.ready.clear()
        self.started_at = time.monotonic()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ivrbot.endpoints.workers.worker", str(theirs.fileno()),
                str(self.pool.flows_dir), pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL, start_new_session=True,
                env=child_environment(),
            )  # fmt: skip
        finally:
            theirs.close()
        self.link = link = await Link.over(mine, self.name)
        started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        link.handler = lambda message: self._on_message(message, started)
        reading = asyncio.ensure_future(link.serve())
        link.send({"op": "hello", "index": self.index, "settings": self.pool.settings_blob,
                   "logs": list(self.pool.log_config)})  # fmt: skip
        exited = asyncio.ensure_future(self.process.wait())
        try:
            waits: list[asyncio.Future[Any]] = [started, exited]
            await asyncio.wait(waits, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        first = started.result() if started.done() else None
        if first is None or first.get("op") != "ready":
            why = first.get("error") if first else None
            if why is None:
                code = self.process.returncode
                why = f"it exited with code {code}" if code is not None else "it did not start"
            await self.kill()
            reading.cancel()
            raise WorkerStartError(f"{self.name} did not start: {why}")
        self.serves = set(first["serves"])
        self.starts += 1
        self.ready.set()
        self.pool.tasks.spawn(self._watch(reading))
        log.info("%s (pid %s) serves %d numbers", self.name, self.pid, len(self.serves))

    def _on_message(self, message: Message, started: asyncio.Future[Message]) -> None:
        op = message.get("op")
        if op in ("ready", "failed"):
            if not started.done():
                started.set_result(message)
        elif op == "event":
            self._relay_event(str(message["sid"]), message["event"])
        elif op == "calls":
            self.live = list(message["rows"])
            self.pool.on_change()

    def _relay_event(self, sid: str, obj: Message) -> None:
        """An event of a mirrored session (as the worker serialised it): to the caller's own
        session; an ended call is forgotten here too."""
        session = self.pool.gateway.sessions.get(sid)
        if session is None:
            return
        try:
            event = parse_event_object(obj)
        except ValueError as exc:
            log.error("%s sent an event the gateway cannot read: %s", self.name, exc)
            return
        if isinstance(event.payload, SessionTerminated) and event.about.topic is Topic.CALL:
            cid = event.about.id
            leg = session.calls.pop(cid, None)
            if leg is not None:
                self.legs.pop((sid, cid), None)
            elif self.placing:  # its place() has not resumed yet: it must not keep the call
                self._ended_early.add((sid, cid))
        session.channel.publish(event)

    async def _watch(self, reading: asyncio.Future[None]) -> None:
        """Wait for the process to end: its calls end, and it starts again (unless stopping)."""
        assert self.process is not None
        code = await self.process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(reading), 2.0)  # events it sent last
        reading.cancel()
        self.ready.clear()
        if self.pool.stopping:
            return
        await self._lost(code)
        await self._restart()

    async def _lost(self, code: int | None) -> None:
        calls = list(self.legs.values())
        self.legs.clear()
        self.live = []
        self.pool.on_change()
        log.error("%s (pid %s) stopped (exit code %s): ending its %d calls",
                  self.name, self.pid, code, len(calls))  # fmt: skip
        for leg in calls:
            if leg.session.calls.pop(leg.id, None) is not None:
                ended = SessionTerminated(reason=Reason.MEDIA_FAILED)
                leg.session.channel.publish(
                    SessionEvent(Resource(Topic.CALL, leg.resource_url), ended)
                )
        why = f"{self.name} stopped"
        settled = self.pool.gateway.store.settle_interrupted(time.time(), node_alive, why)
        if settled:
            log.warning("%s: %d call records marked 'interrupted'", self.name, settled)

    async def _restart(self) -> None:
        quick = time.monotonic() - self.started_at < 30.0
        self.restarts = self.restarts + 1 if quick else 0
        delay = RESTART_DELAYS_S[min(self.restarts, len(RESTART_DELAYS_S) - 1)]
        await asyncio.sleep(delay)
        if self.pool.stopping:
            return
        try:
            await self.start()
        except (WorkerStartError, OSError) as exc:
            log.error("%s: %s; trying again", self.name, exc)
            self.pool.tasks.spawn(self._restart())

    # call operations -----------------------------------------------------------------------
    def _link(self) -> Link:
        if self.link is None or not self.alive:
            raise ApiError("SVC0001", f"{self.name} is restarting: call again in a moment",
                           status=503)  # fmt: skip
        return self.link

    @property
    def load(self) -> int:
        """Calls on it, counting those being placed (callers dialling in the same moment
        spread over the workers)."""
        return len(self.legs) + self.placing

    async def place(self, session: Session, called: str, sdp: str) -> RelayedLeg:
        self.placing += 1
        try:
            reply = await self._link().request(
                "place", sid=session.id, user=session.user_id, e911=session.e911_id,
                to=called, sdp=sdp,
            )  # fmt: skip
        finally:
            self.placing -= 1
        leg = RelayedLeg(str(reply["leg"]), session, self, str(reply.get("call", "")))
        key = (session.id, leg.id)
        if key in self._ended_early:  # over already (busy, not found, hung up at once)
            self._ended_early.discard(key)
            return leg
        session.calls[leg.id] = leg
        self.legs[key] = leg
        return leg

    async def act(self, leg: RelayedLeg, action: CallAction) -> str | None:
        reply = await self._link().request(
            "act", sid=leg.session.id, leg=leg.id, action=action.to_dict()
        )
        mod_id = reply.get("mod")
        return str(mod_id) if mod_id is not None else None

    async def end(self, leg: RelayedLeg, reason: str) -> None:
        await self._link().request("end", sid=leg.session.id, leg=leg.id, reason=reason)

    async def end_session(self, session: Session) -> None:
        if any(sid == session.id for sid, _ in self.legs) and self.alive:
            with contextlib.suppress(WorkerGone):
                await self._link().request("end-session", sid=session.id)

    async def stop(self) -> None:
        """SIGTERM: the worker ends its calls (their events still come here), then exits."""
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15.0)
        except TimeoutError:
            await self.kill()
        if self.link is not None:
            await self.link.close()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()

    def status(self) -> dict[str, Any]:
        return {"index": self.index, "pid": self.pid, "alive": self.alive,
                "calls": len(self.legs), "starts": self.starts}  # fmt: skip


class WorkerPool:
    """``count`` media workers serving the flows in ``flows_dir`` beside ``gateway``."""

    def __init__(
        self,
        gateway: Gateway,
        settings: Settings,
        flows_dir: Path,
        count: int,
        log_config: tuple[str, str, int] = ("info", "text", 0),
    ) -> None:
        self.gateway = gateway
        self.flows_dir = flows_dir
        self.log_config = log_config
        self.settings_blob = base64.b64encode(pickle.dumps(settings)).decode()
        self.workers = [MediaWorker(self, i) for i in range(count)]
        self.tasks = TaskSet("media workers")
        self.stopping = False
        self._unwatch: Callable[[], None] = lambda: None
        self.on_change: Callable[[], None] = lambda: None  # the dashboard's poke

    async def start(self) -> None:
        """Start every worker (in parallel) and wait until all serve; the gateway then
        routes calls to them."""
        try:
            await asyncio.gather(*(w.start() for w in self.workers))
        except BaseException:
            await self.stop()
            raise
        self.gateway.workers = self
        self._unwatch = watch_workers(self.status)  # in /metrics
        log.info("%d media workers started (pids %s)", len(self.workers),
                 ", ".join(str(w.pid) for w in self.workers))  # fmt: skip

    def route(self, session: Session, called: str) -> MediaWorker | None:
        """The worker for a call from ``session`` to ``called``: the one already holding
        the session's calls (a transfer between them stays on one worker), else the least
        busy of those serving the number; None when no running worker serves it (the
        gateway's own bots take it)."""
        ids = set(identity_candidates(called))
        serving = [w for w in self.workers if w.alive and ids & w.serves]
        if not serving:
            return None
        for worker in serving:
            if any(sid == session.id for sid, _ in worker.legs):
                return worker
        return min(serving, key=lambda w: (w.load, w.index))

    async def end_session(self, session: Session) -> None:
        for worker in self.workers:
            await worker.end_session(session)

    async def stop(self) -> None:
        self.stopping = True
        self._unwatch()
        if self.gateway.workers is self:
            self.gateway.workers = None
        await asyncio.gather(*(w.stop() for w in self.workers), return_exceptions=True)
        self.tasks.cancel_all()

    def status(self) -> list[dict[str, Any]]:
        return [w.status() for w in self.workers]

    async def metrics(self) -> list[tuple[str, str]]:
        """Each running worker's metrics (its index, Prometheus text); one that does not
        answer within a second is left out of this scrape."""

        async def one(worker: MediaWorker) -> tuple[str, str] | None:
            try:
                async with asyncio.timeout(1.0):
                    reply = await worker._link().request("metrics")
            except Exception as exc:
                log.info("%s: no metrics this time (%s)", worker.name, exc)
                return None
            return str(worker.index), str(reply["text"])

        found = await asyncio.gather(*(one(w) for w in self.workers if w.alive))
        return [f for f in found if f is not None]

    def live_calls(self) -> list[dict[str, Any]]:
        """Every worker's live calls, as the dashboard shows them (``worker``: its index)."""
        return [row for w in self.workers if w.alive for row in w.live]


def default_count() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
