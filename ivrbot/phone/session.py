"""The Phone's session: events and their handlers, errors, requests to the gateway, login
and logout, keeping the session alive (refresh, event channel, reconnection)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from aiortc import RTCIceServer

from ivrbot.errors import PhoneError, PhoneException, api_error_code
from ivrbot.events import Event, SessionReady, now_ms
from ivrbot.media.local_link import PROCESS_KEY, SESSION_HEADER
from ivrbot.phone.call import Call, CallState
from ivrbot.phone.transport import EventSource, GatewayUnreachable, Response, SessionGone, Transport
from ivrbot.phone.transport_remote import RemoteTransport

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None] | None]


class PhoneSession:
    """A logged-in endpoint without calls; :class:`ivrbot.phone.core.PhoneCore` adds them."""

    def __init__(
        self,
        gateway_url: str,
        name: str = "phone",
        domain: str = "ivrbot.local",
        in_process: bool = False,
        transport: Transport | None = None,
    ) -> None:
        """``transport``: how requests and events reach the gateway (default: HTTP and a
        WebSocket to ``gateway_url``; tests of the Phone's logic pass a scripted one)."""
        self.name = name
        # a bot in the gateway's own process: its calls' media are frames passed in process
        # (ivrbot.media.local_link), not a WebRTC peer connection
        self.in_process = in_process
        self.domain = domain
        self.transport: Transport = transport or RemoteTransport(gateway_url)
        self.user_id: str | None = None
        self.session_path: str | None = None
        self.online = True
        # calls end ('Gateway unreachable') once the gateway has not answered for this long
        self.gateway_grace_s = 10.0
        self._offline_since: float | None = None
        self.calls: list[Call] = []
        self.foreground: Call | None = None  # the current call; a second one waits on hold
        self.ice_servers: list[RTCIceServer] = []  # none: no STUN/TURN (loopback, one host)
        self.ice_transport = "all"
        self._handlers: dict[Event, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._channel_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._next_index = 0
        self._check_now = asyncio.Event()  # wakes the session keeper (gateway unreachable)
        # channel events of a call or conference whose POST has not returned yet, by id
        self._early: dict[str, list[dict[str, Any]]] = {}

    # events --------------------------------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        """Subscribe ``handler`` (sync or async) to an event named as in the spec."""
        if not isinstance(event, str) or not callable(handler):
            self._fail("on", "4901", "on() takes an event name and a callable")
        try:
            name = Event(event)
        except ValueError:
            self._fail("on", "4902", f"unknown event name {event!r}")
        self._handlers.setdefault(name, []).append(handler)

    def publish(self, event: Event, payload: Any = None) -> None:
        for handler in list(self._handlers.get(event, [])):
            try:
                result = handler(payload)
            except Exception:
                log.exception("%s: handler for %s failed", self.name, event)
                continue
            if inspect.isawaitable(result):
                self._spawn(self._guard(event, result))

    async def _guard(self, event: Event, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception:
            log.exception("%s: handler for %s failed", self.name, event)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _fail(
        self,
        method: str,
        code: str,
        message: str,
        resp: Response | None = None,
        publish: bool = True,
    ) -> NoReturn:
        """Fail ``method`` with ``code``: the ``error`` event (unless another event tells
        the application instead), then PhoneException."""
        error = PhoneError(
            error_code=code,
            js_method=method,
            error_message=message,
            http_status_code=resp.status if resp else None,
            message_id=(resp.message_id or "") if resp else "",
            api_error=resp.text if resp else "",
        )
        if publish:
            self.publish(Event.ERROR, error)
        raise PhoneException(error)

    def _api_fail(self, method: str, base: str, resp: Response) -> NoReturn:
        """A gateway error response, as docs/spec/phone-api.md maps it: the session gone (404
        SVC8514) is ``session:expired`` instead of ``error``; a resource that is gone (404
        SVC0404, or a bare 404: a call, a conference) fails the method (``base``, xx00);
        others map by status and MessageId (unknown: 1000). 502/503 never get here: the transport raises
        GatewayUnreachable for them (``gateway:unreachable`` instead of ``error``)."""
        if resp.status == 404 and resp.message_id == "SVC8514" and method != "login":
            self.publish(
                Event.SESSION_EXPIRED, {"sessionId": self.session_id, "timestamp": now_ms()}
            )
            self._fail(method, base, "the session has expired", resp, publish=False)
        if resp.status == 404 and resp.message_id in (None, "", "SVC0404"):
            self._fail(method, base, resp.text or "no such resource", resp)
        self._fail(method, api_error_code(resp.status, resp.message_id), resp.text, resp)

    async def _request(self, method: str, fail_code: str, *args: Any, **kw: Any) -> Response:
        try:
            return await self.transport.request(*args, **kw)
        except GatewayUnreachable as exc:  # gateway:unreachable instead of error
            self._unreachable()
            self._fail(method, fail_code, f"gateway unreachable: {exc}", publish=False)

    def _set_online(self, online: bool) -> None:
        self._offline_since = None if online else self._offline_since or time.monotonic()
        if online != self.online:
            self.online = online
            self.publish(Event.CONNECTIVITY_ON if online else Event.CONNECTIVITY_OFF)

    # session -------------------------------------------------------------------------------
    @property
    def session_id(self) -> str | None:
        return self.session_path.rsplit("/", 1)[-1] if self.session_path else None

    @property
    def logged_in(self) -> bool:
        return self.session_path is not None

    async def login(
        self, token: str | None = None, e911_id: str | None = None, user_id: str | None = None
    ) -> None:
        if not self.online:
            self._fail("login", "0002", "network offline")
        if token is None and e911_id is None and user_id is None:
            self._fail("login", "2001", "login needs options: token (and user_id / e911_id)")
        if not token:
            self._fail("login", "2002", "login needs an access token")
        if self.logged_in:
            self._fail("login", "2003", "already logged in")
        self.transport.token = token
        if user_id:
            resp = await self._request("login", "2000", "PUT", f"/RTC/v1/userIds/{user_id}")
            if not resp.ok:
                self._api_fail("login", "2000", resp)
        headers = {"x-e911Id": e911_id} if e911_id else {}
        if self.in_process:
            headers[SESSION_HEADER] = PROCESS_KEY
        body = {
            "session": {
                "mediaType": "dtls-srtp",
                "ice": "true",
                "services": ["ip_voice_call", "ip_video_call"],
            }
        }
        resp = await self._request("login", "2000", "POST", "/RTC/v1/sessions", body, headers)
        if resp.status != 201:
            self._api_fail("login", "2000", resp)
        self.session_path = resp.headers["Location"]
        self.user_id = user_id
        try:
            stream = await self.transport.open_events(self.session_path)
        except GatewayUnreachable as exc:
            self.session_path = None
            self._fail("login", "2000", str(exc))
        self._channel_task = self._spawn(self._keep_channel(stream))
        expires = resp.headers.get("x-expires", "")
        if expires.isdigit() and int(expires) > 0:
            self._refresh_task = self._spawn(self._keep_session(int(expires)))
        self.publish(Event.SESSION_READY, SessionReady(self.session_id or "", user_id or ""))

    async def logout(self) -> None:
        if not self.online:
            self._fail("logout", "0002", "network offline")
        if not self.logged_in:
            self._fail("logout", "2101", "not logged in")
        for call in list(self.calls):
            await self._end_call(call, "terminate" if call.state != CallState.CREATED else None)
        path, self.session_path = self.session_path, None  # the channel reader stops quietly
        assert path is not None
        try:
            await self.transport.request("DELETE", path)
        except GatewayUnreachable:
            pass
        await self._close_session()
        self.publish(Event.SESSION_DISCONNECTED)

    async def associate_e911_id(self, e911_id: Any = None) -> None:
        """Re-associate the session with another emergency address (publishes address-updated)."""
        if e911_id is None:
            self._fail("associate_e911_id", "2051", "associate_e911_id needs an e911_id")
        if not isinstance(e911_id, str) or not e911_id:
            self._fail("associate_e911_id", "2052", "e911_id must be a non-empty string")
        if not self.logged_in or self.session_path is None:
            self._fail("associate_e911_id", "2053", "not logged in")
        body = {"e911Association": {"e911Id": e911_id}}
        resp = await self._request("associate_e911_id", "2050", "PUT", self.session_path, body)
        if not resp.ok:
            self._api_fail("associate_e911_id", "2050", resp)
        self.publish(Event.ADDRESS_UPDATED, {"sessionId": self.session_id, "timestamp": now_ms()})

    def set_ice_servers(self, servers: Any) -> None:
        """STUN/TURN servers for the next calls: [{'urls': 'turn:...', 'username', 'credential'}]
        or URL strings. None are used by default (one machine needs none)."""
        parsed: list[RTCIceServer] = []
        ok = isinstance(servers, list)
        for server in servers if ok else []:
            if isinstance(server, str):
                server = {"urls": server}
            urls = server.get("urls") if isinstance(server, dict) else None
            if isinstance(urls, str):
                urls = [urls]
            if (
                not isinstance(urls, list)
                or not urls
                or not all(
                    isinstance(u, str) and u.startswith(("stun:", "turn:", "turns:")) for u in urls
                )
            ):
                ok = False
                break
            parsed.append(RTCIceServer(urls, server.get("username"), server.get("credential")))
        if not ok:
            self._fail(
                "set_ice_servers", "4811",
                "ice servers must be a list of {'urls': 'stun:...'|'turn:...', ...} or URL strings",
            )  # fmt: skip
        self.ice_servers = parsed

    def set_ice_transport(self, policy: Any) -> None:
        """'all' (default), 'relay' (TURN only) or 'none' (no candidates) for the next calls."""
        if policy not in ("all", "relay", "none"):
            self._fail(
                "set_ice_transport", "4821", "ice transport must be 'all', 'relay' or 'none'"
            )
        self.ice_transport = policy

    async def _close_session(self) -> None:
        self.session_path = None
        for task in (self._channel_task, self._refresh_task):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._channel_task = self._refresh_task = None
        await self.transport.close()

    async def _calls_lost(self, message: str) -> None:
        """Every call ends here, without asking the gateway: call:disconnected (``message``)."""
        for call in list(self.calls):
            await self._forget(call, CallState.DISCONNECTED)
            self.publish(Event.CALL_DISCONNECTED, call.event_data(message=message))

    async def _session_lost(self) -> None:
        """The gateway dropped the session (expired): calls end here, session:expired."""
        session_id = self.session_id
        await self._calls_lost("Session expired")
        await self._close_session()
        self.online = True  # the gateway answered (404): nothing is offline without a session
        self.publish(Event.SESSION_EXPIRED, {"sessionId": session_id, "timestamp": now_ms()})

    def _unreachable(self) -> None:
        """The gateway did not answer: ``gateway:unreachable``. A session goes offline (once
        per outage) until its channel is back; without one there is no state to keep."""
        if not self.logged_in or self.online:
            if self.logged_in:
                self._set_online(False)
                self._check_now.set()  # the session keeper checks at once, then every 2 s
            self.publish(
                Event.GATEWAY_UNREACHABLE, {"sessionId": self.session_id, "timestamp": now_ms()}
            )
        since = self._offline_since
        if self.calls and since is not None and time.monotonic() - since >= self.gateway_grace_s:
            log.warning("%s: the gateway has not answered for %.0f s: ending its calls",
                        self.name, time.monotonic() - since)  # fmt: skip
            self._spawn(self._calls_lost("Gateway unreachable"))

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

    async def close(self) -> None:
        """Log out if logged in, and release everything (safe to call twice)."""
        if self.logged_in:
            try:
                await self.logout()
            except PhoneException:
                await self._close_session()
        for task in list(self._tasks):
            task.cancel()
        await self.transport.close()  # also after a login the gateway refused

    # the event channel -----------------------------------------------------------------------
    async def _keep_channel(self, stream: EventSource) -> None:
        """Read the event channel; when it drops, retry every second until back or expired."""
        while self.session_path is not None:
            try:
                async for obj in stream:
                    try:
                        await self._on_channel_event(obj)
                    except Exception:
                        log.exception("%s: handling %s failed", self.name, obj.get("state"))
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

    # what the call layer provides -----------------------------------------------------------
    async def _on_channel_event(self, obj: dict[str, Any]) -> None:
        """An event object from the channel (PhoneCore dispatches it)."""

    async def _end_call(
        self, call: Call, reason: str | None, message: str = "Call terminated"
    ) -> None:
        raise NotImplementedError

    async def _forget(self, call: Call, state: CallState) -> None:
        raise NotImplementedError
