"""The worker's side of the link: callers' sessions mirrored here, call operations applied
to this worker's own switch, and every event of those sessions sent back to the gateway."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from prometheus_client import generate_latest

from ivrbot.core.actions import CallAction
from ivrbot.core.channel import EventChannel
from ivrbot.core.events import SessionEvent, SessionTerminated
from ivrbot.core.handle import CallHandle
from ivrbot.core.sessions import Session
from ivrbot.endpoints.workers.link import Link, Message
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.serialise import event_object

log = logging.getLogger(__name__)


class RelayChannel(EventChannel):
    """A mirrored session's events: sent to the gateway, which publishes them to the
    caller's own session (same session id, so the same resource URLs)."""

    def __init__(self, link: Link, sid: str, host: WorkerHost) -> None:
        super().__init__()
        self.link, self.sid, self.host = link, sid, host

    def publish(self, event: SessionEvent) -> None:
        self.link.send({"op": "event", "sid": self.sid, "event": event_object(event)})
        if isinstance(event.payload, SessionTerminated):
            asyncio.get_running_loop().call_soon(self.host.forget_if_idle, self.sid)

    def close(self) -> None:
        pass  # the gateway's own session channel closes with its session


class WorkerHost:
    """Applies the gateway's requests (``place``, ``act``, ``end``, ``end-session``)."""

    def __init__(self, gateway: Gateway, link: Link) -> None:
        self.gateway = gateway
        self.link = link
        link.handler = self.handle

    async def handle(self, message: Message) -> Message | None:
        op = message.get("op")
        if op == "place":
            return await self._place(message)
        if op == "act":
            mod_id = await self._leg(message).act(CallAction(**message["action"]))
            return {"mod": mod_id}
        if op == "end":
            await self._leg(message).end(str(message["reason"]))
            return {}
        if op == "metrics":
            return {"text": generate_latest().decode()}
        if op == "end-session":
            session = self.gateway.sessions.get(str(message["sid"]))
            if session is not None:
                await self.gateway.end_session(session)
            return {}
        log.warning("unknown request from the gateway: %s", op)
        return None

    async def _place(self, message: Message) -> Message:
        sid = str(message["sid"])
        session = self.gateway.sessions.get(sid)
        if session is None:
            channel = RelayChannel(self.link, sid, self)
            session = self.gateway.sessions.create(
                str(message["user"]), "", message.get("e911"), channel=channel, sid=sid
            )
        leg = await self.gateway.switch.place(session, str(message["to"]), str(message["sdp"]))
        return {"leg": leg.id, "call": leg.call_id}

    def _session(self, message: Message) -> Session:
        session = self.gateway.sessions.get(str(message["sid"]))
        if session is None:
            raise web.HTTPNotFound(text=f"no call {message.get('leg')} in this session")
        return session

    def _leg(self, message: Message) -> CallHandle:
        leg = self._session(message).calls.get(str(message["leg"]))
        if leg is None:
            raise web.HTTPNotFound(text=f"no call {message['leg']} in this session")
        return leg

    def forget_if_idle(self, sid: str) -> None:
        """A mirrored session with no call left goes (the next call makes it again)."""
        session = self.gateway.sessions.get(sid)
        if session is not None and not session.calls and not session.waiting:
            self.gateway.sessions.remove(sid)
