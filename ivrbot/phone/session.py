"""The Phone's session with the gateway: requests (and how their failures reach the
application), login, logout, E911 association, keeping the session alive (refresh, the
event channel, reconnection). The calls are another part's: the session asks it through
:class:`CallKeeper` (end them at logout, lose them when the session is gone, take the
channel's events)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NoReturn, Protocol

from ivrbot.errors import PhoneException, api_error_code
from ivrbot.events import Event, SessionNotice, SessionReady
from ivrbot.media.hold import HOLD_AUDIO_HEADER
from ivrbot.phone.publisher import Publisher
from ivrbot.phone.transport import EventSource, GatewayUnreachable, Response, SessionGone, Transport

log = logging.getLogger(__name__)


class CallKeeper(Protocol):
    """What the session needs of the part that holds the calls."""

    @property
    def has_calls(self) -> bool: ...

    async def end_all(self) -> None:
        """End every call from this side (logout)."""

    async def lose_all(self, message: str) -> None:
        """Every call ends here without asking the gateway (call:disconnected)."""

    async def on_channel_event(self, obj: dict[str, Any]) -> None:
        """An event object from the session's event channel."""


class PhoneSession:
    """The Phone's session: its id, whether the gateway answers, and requests to it."""

    def __init__(
        self,
        publisher: Publisher,
        transport: Transport,
        hold_audio: str | None = None,
    ) -> None:
        self.publisher = publisher
        self.transport = transport
        # what the gateway sends this session while the far end holds ('music' | 'silence';
        # None: the gateway's choice); a session that says is also told of the far end's
        # hold and resume (call:remote-held / call:remote-resumed)
        self.hold_audio = hold_audio
        self.keeper: CallKeeper | None = None  # set once the calls part exists (Phone)
        self.user_id: str | None = None
        self.session_path: str | None = None
        self.online = True
        # calls end ('Gateway unreachable') once the gateway has not answered for this long
        self.gateway_grace_s = 10.0
        self._offline_since: float | None = None
        self._channel_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._check_now = asyncio.Event()  # wakes the session keeper (gateway unreachable)

    @property
    def session_id(self) -> str | None:
        return self.session_path.rsplit("/", 1)[-1] if self.session_path else None

    @property
    def logged_in(self) -> bool:
        return self.session_path is not None

    def _keeper(self) -> CallKeeper:
        assert self.keeper is not None, "the Phone sets the session's call keeper"
        return self.keeper

    def _notice(self, event: Event) -> None:
        self.publisher.publish(event, SessionNotice(self.session_id))

    # requests ------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        fail_code: str,
        verb: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A wire request for ``method``; nobody answering fails it (``fail_code``) with
        ``gateway:unreachable`` instead of ``error``."""
        try:
            return await self.transport.request(verb, path, body, headers)
        except GatewayUnreachable as exc:
            self._unreachable()
            self.publisher.fail(method, fail_code, f"gateway unreachable: {exc}", publish=False)

    async def request_quietly(
        self, verb: str, path: str, headers: dict[str, str] | None = None
    ) -> None:
        """A request whose outcome changes nothing here (a DELETE on the way out)."""
        with contextlib.suppress(GatewayUnreachable):
            await self.transport.request(verb, path, headers=headers)

    def api_fail(self, method: str, base: str, resp: Response) -> NoReturn:
        """A gateway error response, as docs/spec/phone-api.md maps it: the session gone (404
        SVC8514) is ``session:expired`` instead of ``error``; a resource that is gone (404
        SVC0404, or a bare 404: a call, a conference) fails the method (``base``, xx00);
        others map by status and MessageId (unknown: 1000). 502/503 never get here: the
        transport raises GatewayUnreachable for them (``gateway:unreachable``)."""
        fail = self.publisher.fail
        if resp.status == 404 and resp.message_id == "SVC8514" and method != "login":
            self._notice(Event.SESSION_EXPIRED)
            fail(method, base, "the session has expired", resp, publish=False)
        if resp.status == 404 and resp.message_id in (None, "", "SVC0404"):
            fail(method, base, resp.text or "no such resource", resp)
        fail(method, api_error_code(resp.status, resp.message_id), resp.text, resp)

    def check_online(self, method: str) -> None:
        if not self.online:
            self.publisher.fail(method, "0002", "network offline")

    def check_logged_in(self, method: str, code: str) -> None:
        if not self.logged_in:
            self.publisher.fail(method, code, "not logged in")

    # login, logout -------------------------------------------------------------------------
    async def login(
        self, token: str | None = None, e911_id: str | None = None, user_id: str | None = None
    ) -> None:
        fail = self.publisher.fail
        self.check_online("login")
        if token is None and e911_id is None and user_id is None:
            fail("login", "2001", "login needs options: token (and user_id / e911_id)")
        if not token:
            fail("login", "2002", "login needs an access token")
        if self.logged_in:
            fail("login", "2003", "already logged in")
        self.transport.token = token
        if user_id:
            resp = await self.request("login", "2000", "PUT", f"/RTC/v1/userIds/{user_id}")
            if not resp.ok:
                self.api_fail("login", "2000", resp)
        headers = {"x-e911Id": e911_id} if e911_id else {}
        if self.hold_audio is not None:
            headers[HOLD_AUDIO_HEADER] = self.hold_audio
        body = {
            "session": {
                "mediaType": "dtls-srtp",
                "ice": "true",
                "services": ["ip_voice_call", "ip_video_call"],
            }
        }
        resp = await self.request("login", "2000", "POST", "/RTC/v1/sessions", body, headers)
        if resp.status != 201:
            self.api_fail("login", "2000", resp)
        self.session_path = resp.headers["Location"]
        self.user_id = user_id
        try:
            stream = await self.transport.open_events(self.session_path)
        except GatewayUnreachable as exc:
            self.session_path = None
            fail("login", "2000", str(exc))
        self._channel_task = self.publisher.spawn(self._keep_channel(stream))
        expires = resp.headers.get("x-expires", "")
        if expires.isdigit() and int(expires) > 0:
            self._refresh_task = self.publisher.spawn(self._keep_session(int(expires)))
        ready = SessionReady(self.session_id or "", user_id or "")
        self.publisher.publish(Event.SESSION_READY, ready)

    async def logout(self) -> None:
        self.check_online("logout")
        self.check_logged_in("logout", "2101")
        await self._keeper().end_all()
        path, self.session_path = self.session_path, None  # the channel reader stops quietly
        assert path is not None
        await self.request_quietly("DELETE", path)
        await self._close_session()
        self.publisher.publish(Event.SESSION_DISCONNECTED)

    async def associate_e911_id(self, e911_id: Any = None) -> None:
        """Re-associate the session with another emergency address (publishes address-updated)."""
        method, fail = "associate_e911_id", self.publisher.fail
        if e911_id is None:
            fail(method, "2051", "associate_e911_id needs an e911_id")
        if not isinstance(e911_id, str) or not e911_id:
            fail(method, "2052", "e911_id must be a non-empty string")
        if self.session_path is None:
            fail(method, "2053", "not logged in")
        body = {"e911Association": {"e911Id": e911_id}}
        resp = await self.request(method, "2050", "PUT", self.session_path, body)
        if not resp.ok:
            self.api_fail(method, "2050", resp)
        self._notice(Event.ADDRESS_UPDATED)

    async def close(self) -> None:
        """Log out if logged in, and release everything (safe to call twice)."""
        if self.logged_in:
            try:
                await self.logout()
            except PhoneException:
                await self._close_session()
        self.publisher.cancel_all()
        await self.transport.close()  # also after a login the gateway refused

    async def _close_session(self) -> None:
        self.session_path = None
        for task in (self._channel_task, self._refresh_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._channel_task = self._refresh_task = None
        await self.transport.close()

    # losing and keeping the session --------------------------------------------------------
    def _set_online(self, online: bool) -> None:
        self._offline_since = None if online else self._offline_since or time.monotonic()
        if online != self.online:
            self.online = online
            self.publisher.publish(Event.CONNECTIVITY_ON if online else Event.CONNECTIVITY_OFF)

    async def _session_lost(self) -> None:
        """The gateway dropped the session (expired): calls end here, session:expired."""
        session_id = self.session_id
        await self._keeper().lose_all("Session expired")
        await self._close_session()
        self.online = True  # the gateway answered (404): nothing is offline without a session
        self.publisher.publish(Event.SESSION_EXPIRED, SessionNotice(session_id))

    def _unreachable(self) -> None:
        """The gateway did not answer: ``gateway:unreachable``. A session goes offline (once
        per outage) until its channel is back; without one there is no state to keep."""
        if not self.logged_in or self.online:
            if self.logged_in:
                self._set_online(False)
                self._check_now.set()  # the session keeper checks at once, then every 2 s
            self._notice(Event.GATEWAY_UNREACHABLE)
        since = self._offline_since
        keeper = self.keeper
        if keeper is not None and keeper.has_calls and since is not None:
            if time.monotonic() - since >= self.gateway_grace_s:
                log.warning("%s: the gateway has not answered for %.0f s: ending its calls",
                            self.publisher.name, time.monotonic() - since)  # fmt: skip
                self.publisher.spawn(keeper.lose_all("Gateway unreachable"))

    async def _keep_session(self, expires_s: int) -> None:
        """Refresh the session before it expires (x-expires - 60 s, or half of a short one)."""
        while self.logged_in:
            wait = max(expires_s - 60, expires_s / 2) if self.online else 2.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), wait)
            self._check_now.clear()
            if self.session_path is None:
                return
            try:
                resp = await self.transport.request("PUT", self.session_path, {})
            except GatewayUnreachable:
                self._unreachable()
                continue
            if resp.status == 404:
                await self._session_lost()
                return
            self._set_online(True)
            header = resp.headers.get("x-expires", "")
            expires_s = int(header) if header.isdigit() and int(header) > 0 else expires_s

    async def _keep_channel(self, stream: EventSource) -> None:
        """Read the event channel; when it drops, retry every second until back or expired."""
        while self.session_path is not None:
            try:
                async for obj in stream:
                    try:
                        await self._keeper().on_channel_event(obj)
                    except Exception:
                        log.exception("%s: handling %s failed", self.publisher.name,
                                      obj.get("state"))  # fmt: skip
            except GatewayUnreachable:
                pass
            except asyncio.CancelledError:
                await stream.close()
                raise
            while self.session_path is not None:
                self._unreachable()
                await asyncio.sleep(1.0)
                try:
                    stream = await self.transport.open_events(self.session_path)
                except SessionGone:
                    await self._session_lost()
                    return
                except GatewayUnreachable:
                    continue
                self._set_online(True)
                break
