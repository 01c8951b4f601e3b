"""The Phone's core: session, events, errors, requests, call bookkeeping, the event channel,
and the basic call methods (dial, answer, hangup, send_dtmf_tone)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from aiortc import MediaStreamTrack, RTCIceServer, RTCSessionDescription

from ivrbot import __version__
from ivrbot.errors import PhoneError, PhoneException, api_error_code
from ivrbot.events import Event, SessionReady, now_ms
from ivrbot.numbers import called_party_uri
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.transport_remote import (
    EventStream,
    GatewayUnreachable,
    RemoteTransport,
    Response,
    SessionGone,
)

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None] | None]
MEDIA_TYPES = ("audio", "video")
DTMF_TONES = re.compile(r"^[0-9*#A-Da-d]+$")
MEDIA_TIMEOUT_S = 10.0


class PhoneCore:
    """Session, events and the basic call methods; :class:`ivrbot.phone.phone.Phone` adds the
    rest (in-call control, conferences)."""

    def __init__(self, gateway_url: str, name: str = "phone", domain: str = "ivrbot.local") -> None:
        self.name = name
        self.domain = domain
        self.transport = RemoteTransport(gateway_url)
        self.user_id: str | None = None
        self.session_path: str | None = None
        self.online = True
        self.calls: list[Call] = []
        self.foreground: Call | None = None  # the current call; a second one waits on hold
        self.ice_servers: list[RTCIceServer] = []  # none: no STUN/TURN (loopback, one host)
        self.ice_transport = "all"
        self._handlers: dict[Event, list[Handler]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._channel_task: asyncio.Task[None] | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._next_index = 0

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

    def _fail(self, method: str, code: str, message: str, resp: Response | None = None) -> NoReturn:
        error = PhoneError(
            error_code=code,
            js_method=method,
            error_message=message,
            http_status_code=resp.status if resp else None,
            message_id=(resp.message_id or "") if resp else "",
            api_error=resp.text if resp else "",
        )
        self.publish(Event.ERROR, error)
        raise PhoneException(error)

    def _api_fail(self, method: str, base: str, resp: Response) -> NoReturn:
        if resp.status == 404 and self.session_path and method != "login":
            self.publish(
                Event.SESSION_EXPIRED, {"sessionId": self.session_id, "timestamp": now_ms()}
            )
        code = api_error_code(resp.status, resp.message_id)
        self._fail(method, code if code != "1000" else base, resp.text, resp)

    async def _request(self, method: str, fail_code: str, *args: Any, **kw: Any) -> Response:
        try:
            return await self.transport.request(*args, **kw)
        except GatewayUnreachable as exc:
            self._set_online(False)
            self.publish(
                Event.GATEWAY_UNREACHABLE, {"sessionId": self.session_id, "timestamp": now_ms()}
            )
            self._fail(method, fail_code, f"gateway unreachable: {exc}")

    def _set_online(self, online: bool) -> None:
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

    async def _session_lost(self) -> None:
        """The gateway dropped the session (expired): calls end here, session:expired."""
        session_id = self.session_id
        for call in list(self.calls):
            await self._forget(call, CallState.DISCONNECTED)
            self.publish(Event.CALL_DISCONNECTED, call.event_data(message="Session expired"))
        await self._close_session()
        self.publish(Event.SESSION_EXPIRED, {"sessionId": session_id, "timestamp": now_ms()})

    def _unreachable(self) -> None:
        if self.online:
            self._set_online(False)
            self.publish(
                Event.GATEWAY_UNREACHABLE, {"sessionId": self.session_id, "timestamp": now_ms()}
            )

    async def _keep_session(self, expires_s: int) -> None:
        """Refresh the session before it expires (x-expires - 60 s, or half of a short one)."""
        while self.logged_in:
            await asyncio.sleep(max(expires_s - 60, expires_s / 2) if self.online else 2.0)
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

    # calls ---------------------------------------------------------------------------------
    def _new_call(self, direction: str, peer: str, **media: Any) -> Call:
        self._next_index += 1
        call = Call(self, self._next_index, direction, peer, **media)
        self.calls.append(call)
        return call

    @property
    def current_call(self) -> Call | None:
        call = self.foreground
        return call if call is not None and call.state not in ENDED else None

    @property
    def background_call(self) -> Call | None:
        return next(
            (c for c in self.calls if c is not self.foreground and c.state not in ENDED
             and c.state != CallState.CREATED), None,
        )  # fmt: skip

    def _check_media(self, method: str, codes: tuple[str, str], local: Any, remote: Any) -> None:
        if local is not None and not isinstance(local, MediaStreamTrack):
            self._fail(method, codes[0], "local_media must be an audio track (MediaStreamTrack)")
        if remote is not None and not callable(remote):
            self._fail(method, codes[1], "remote_media must be a callable receiving audio frames")

    async def dial(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
    ) -> Call:
        if not self.online:
            self._fail("dial", "0002", "network offline")
        if destination is None:
            self._fail("dial", "2201", "dial needs a destination")
        if not isinstance(destination, str) or not destination.strip():
            self._fail("dial", "2211", "destination must be a non-empty string")
        if "sip:" in destination or "tel:" in destination:
            self._fail("dial", "2212", "destination must not contain sip: or tel:")
        if destination.count("@") > 1:
            self._fail("dial", "2213", "destination has more than one @")
        if media_type not in MEDIA_TYPES:
            self._fail("dial", "2221", "media_type must be 'audio' or 'video'")
        self._check_media("dial", ("2231", "2232"), local_media, remote_media)
        if not self.logged_in:
            self._fail("dial", "2241", "not logged in")
        current = self.current_call
        if current is not None and current.state in (CallState.CREATED, CallState.CONNECTING):
            self._fail("dial", "2251", "a call is still connecting")
        if current is not None:
            self._fail("dial", "2252", "a call is already active")
        return await self._place("dial", "2200", destination, media_type, local_media, remote_media)

    async def _place(
        self,
        method: str,
        code: str,
        destination: str,
        media_type: str,
        local_media: MediaStreamTrack | None,
        remote_media: Callable[..., Any] | None,
    ) -> Call:
        """Offer a new outgoing call to the gateway; it becomes the foreground call."""
        uri = called_party_uri(destination, self.domain)
        if uri is None:
            self._fail(method, code[:2] + "11", f"{destination!r} is not a callable number")
        call = self._new_call(
            "outgoing",
            uri,
            media_type=media_type,
            local_media=local_media,
            remote_media=remote_media,
        )
        self.publish(Event.DIALING, {"to": uri, "mediaType": media_type, "timestamp": now_ms()})
        call.pc.addTrack(call.local_media)
        await call.pc.setLocalDescription(await call.pc.createOffer())
        body = {"call": {"calledParty": uri, "sdp": call.pc.localDescription.sdp}}
        self.foreground = call
        resp = await self._request(method, code, "POST", f"{self.session_path}/calls", body)
        if resp.status != 201:
            await self._forget(call, CallState.DISCONNECTED)
            self._api_fail(method, code, resp)
        call.id = resp.headers["Location"].rsplit("/", 1)[-1]
        call.set_state(CallState.CONNECTING)
        self.publish(Event.CALL_CONNECTING, call.event_data())
        return call

    def _pending_incoming(self, breed: str | None = None) -> Call | None:
        """The incoming call or conference invitation not yet answered (of ``breed``, if given)."""
        return next(
            (
                c
                for c in self.calls
                if c.direction == "incoming"
                and c.state == CallState.CREATED
                and breed in (None, c.breed)
            ),
            None,
        )

    async def answer(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        action: str | None = None,
    ) -> Call:
        if not self.online:
            self._fail("answer", "0002", "network offline")
        self._check_media("answer", ("2311", "2312"), local_media, remote_media)
        if not self.logged_in:
            self._fail("answer", "2321", "not logged in")
        call = self._pending_incoming("call")
        if call is None:
            self._fail("answer", "2331", "no incoming call to answer")
        assert call is not None
        others = [c for c in self.calls if c is not call and c.state not in ENDED]
        if others and action not in ("hold", "end"):
            self._fail("answer", "2341", "a call is in progress: action must be 'hold' or 'end'")
        if others and action == "end":
            for other in others:
                await self._end_call(other, "terminate")
        elif (
            others and self.foreground is not None and self.foreground.state == CallState.CONNECTED
        ):
            await self._hold_call(self.foreground, "answer", "2300", auto=True)
        if local_media is not None:
            call.local_media = local_media
        if remote_media is not None:
            call.remote_media = remote_media
        self.publish(
            Event.ANSWERING,
            {"from": call.peer, "mediaType": call.media_type, "codec": "", "timestamp": now_ms()},
        )
        assert call.remote_sdp is not None
        await call.pc.setRemoteDescription(RTCSessionDescription(call.remote_sdp, "offer"))
        call.pc.addTrack(call.local_media)
        await call.pc.setLocalDescription(await call.pc.createAnswer())
        body = {"callsMediaModifications": {"sdp": call.pc.localDescription.sdp}}
        headers = {"x-calls-action": "call-answer"}
        path = f"{self.session_path}/calls/{call.id}"
        resp = await self._request("answer", "2300", "PUT", path, body, headers)
        if not resp.ok:
            await self._forget(call, CallState.DISCONNECTED)
            self._api_fail("answer", "2300", resp)
        self.foreground = call
        call.set_state(CallState.CONNECTING)
        self.publish(Event.CALL_CONNECTING, call.event_data())
        return call

    async def hangup(self) -> None:
        if not self.online:
            self._fail("hangup", "0002", "network offline")
        if not self.logged_in:
            self._fail("hangup", "2401", "not logged in")
        call = self.current_call
        if call is None or call.state in (CallState.CREATED, CallState.DISCONNECTING):
            self._fail("hangup", "2402", "no active call")
        assert call is not None
        await self._end_call(call, "terminate")

    async def _end_call(self, call: Call, reason: str | None) -> None:
        """End a call from this side (``reason`` is the x-delete-reason, None: no request)."""
        if call.state in ENDED:
            return
        call.set_state(CallState.DISCONNECTING)
        self.publish(Event.CALL_DISCONNECTING, call.event_data())
        if reason and call.id and self.session_path:
            try:
                await self.transport.request(
                    "DELETE",
                    f"{self.session_path}/calls/{call.id}",
                    headers={"x-delete-reason": reason},
                )
            except GatewayUnreachable:
                pass
        await self._forget(call, CallState.DISCONNECTED)
        self.publish(Event.CALL_DISCONNECTED, call.event_data(message="Call terminated"))

    async def _forget(self, call: Call, state: CallState) -> None:
        """The call is over here: close its media; the remaining call comes to the front."""
        call.set_state(state)
        await call.close_media()
        if call in self.calls:
            self.calls.remove(call)
        if call is self.foreground:
            self.foreground = self.background_call
            remaining = self.foreground
            if remaining is not None and remaining.auto_held and remaining.state == CallState.HELD:
                self._spawn(self._auto_resume(remaining))

    async def _auto_resume(self, call: Call) -> None:
        try:
            await self._resume_call(call, "resume", "2600")
        except PhoneException:
            log.warning("%s: could not resume call %d", self.name, call.index)

    async def send_dtmf_tone(self, input: str | None = None, gap: int = 70) -> None:
        """Send keypad tones on the current call (RFC 4733), publishing dtmf:tone-sent each."""
        if not self.online:
            self._fail("send_dtmf_tone", "0002", "network offline")
        if input is None:
            self._fail("send_dtmf_tone", "4711", "send_dtmf_tone needs input")
        if not isinstance(input, str) or not DTMF_TONES.match(input) or gap < 50:
            self._fail("send_dtmf_tone", "4712", "input must be 0-9 * # A-D and gap >= 50 ms")
        if not self.logged_in:
            self._fail("send_dtmf_tone", "4721", "not logged in")
        call = self.current_call
        if call is None:
            self._fail("send_dtmf_tone", "4731", "no call")
        assert call is not None
        if call.state != CallState.CONNECTED:
            self._fail("send_dtmf_tone", "4741", "the call is not connected")
        for tone in input:
            self.publish(Event.DTMF_TONE_SENDING, call.event_data(tone=tone))
            if not await call.send_dtmf(tone, gap):
                self._fail(
                    "send_dtmf_tone", "4700", "the far end did not negotiate telephone-event"
                )
            self.publish(Event.DTMF_TONE_SENT, call.event_data(tone=tone))

    def get_calls(self) -> list[dict[str, object]]:
        return [c.to_info() for c in self.calls]

    def is_call_in_progress(self) -> bool:
        return self.current_call is not None

    def get_media_type(self) -> str | None:
        call = self.current_call
        return call.media_type if call else None

    @staticmethod
    def get_version() -> str:
        return __version__

    # the event channel -----------------------------------------------------------------------
    async def _keep_channel(self, stream: EventStream) -> None:
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

    def _call_by_url(self, url: str) -> Call | None:
        cid = url.rstrip("/").rsplit("/", 1)[-1]
        return next((c for c in self.calls if c.id == cid), None)

    async def _on_channel_event(self, obj: dict[str, Any]) -> None:
        if obj.get("type") == "conferences":
            await self._on_conference_event(obj)
            return
        if obj.get("type") != "calls":
            return
        state, url = obj.get("state"), str(obj.get("resourceURL", ""))
        call = self._call_by_url(url)
        if state == "invitation-received":
            if self._pending_incoming() is not None or len(self.calls) >= 2:
                self.publish(
                    Event.NOTIFICATION,
                    {"message": "a further incoming call was refused", "timestamp": now_ms()},
                )
                await self.transport.request("DELETE", url, headers={"x-delete-reason": "reject"})
                return
            call = self._new_call("incoming", str(obj.get("from", "")))
            call.id = url.rsplit("/", 1)[-1]
            call.remote_sdp = obj.get("sdp")
            self.publish(
                Event.CALL_INCOMING,
                {
                    "from": call.peer,
                    "mediaType": call.media_type,
                    "codec": "",
                    "timestamp": now_ms(),
                },
            )
        elif call is None:
            return
        elif state == "session-open":
            await self._set_answer(call, obj.get("sdp"))
            if call.direction == "incoming" or call.pc.remoteDescription is not None:
                self._spawn(self._when_media_up(call))
        elif state == "session-modified" and obj.get("provisionalSDP"):
            await self._set_answer(call, obj["provisionalSDP"])
            self.publish(Event.CALL_RINGBACK_PROVIDED, call.event_data())
        elif state == "session-terminated":
            await self._remote_ended(call, str(obj.get("reason", "")))
        else:
            await self._on_call_changed(call, str(state), obj)

    @staticmethod
    async def _set_answer(call: Call, sdp: Any) -> None:
        """Apply the gateway's answer once (it may come early, for ringback, and again)."""
        if (
            isinstance(sdp, str)
            and call.direction == "outgoing"
            and call.pc.remoteDescription is None
        ):
            await call.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def _when_media_up(self, call: Call, connected: Event = Event.CALL_CONNECTED) -> None:
        """Connected once the gateway said so and ICE and DTLS are up (``connected`` is the
        event to publish: call:connected, or conference:connected)."""
        try:
            await asyncio.wait_for(call.media_up.wait(), MEDIA_TIMEOUT_S)
        except TimeoutError:
            await self._media_failed(call)
            return
        if call.state == CallState.CONNECTING and call.pc.connectionState == "connected":
            call.set_state(CallState.CONNECTED)
            self.publish(Event.MEDIA_ESTABLISHED, call.event_data())
            self.publish(connected, call.event_data())

    async def _media_failed(self, call: Call) -> None:
        if call.state not in ENDED:
            log.warning("%s: media of call %d failed", self.name, call.index)
            await self._end_call(call, "terminate")

    async def _remote_ended(self, call: Call, reason: str) -> None:
        call.end_reason = reason
        if call.state == CallState.CREATED and call.direction == "incoming":
            await self._forget(call, CallState.CANCELED)
            self.publish(Event.CALL_CANCELED, call.event_data(message=reason))
        elif call.state == CallState.CONNECTING and reason == "User busy":
            await self._forget(call, CallState.REJECTED)
            self.publish(Event.CALL_REJECTED, call.event_data(message=reason))
        elif call.state not in ENDED:
            await self._forget(call, CallState.DISCONNECTED)
            self.publish(Event.CALL_DISCONNECTED, call.event_data(message=reason))

    # primitives the in-call methods build on ----------------------------------------------
    async def _call_action(
        self,
        method: str,
        code: str,
        call: Call,
        action: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Response:
        path = f"{self.session_path}/calls/{call.id}"
        resp = await self._request(
            method, code, "PUT", path, body or {}, {"x-calls-action": action, **(headers or {})}
        )
        if not resp.ok:
            self._api_fail(method, code, resp)
        return resp

    async def _hold_call(self, call: Call, method: str, code: str, auto: bool) -> None:
        await self._call_action(method, code, call, "initiate-call-hold")
        call.auto_held = auto
        call.set_state(CallState.HELD)
        self.publish(Event.CALL_HELD, call.event_data())

    async def _resume_call(self, call: Call, method: str, code: str) -> None:
        await self._call_action(method, code, call, "initiate-call-resume")
        call.auto_held = False
        call.set_state(CallState.CONNECTED)
        self.publish(Event.CALL_RESUMED, call.event_data())

    async def _on_call_changed(self, call: Call, state: str, obj: dict[str, Any]) -> None:
        """Channel events of a call beyond open/terminated (see CallControl)."""

    async def _on_conference_event(self, obj: dict[str, Any]) -> None:
        """Channel events of type 'conferences' (see ConferenceMethods)."""
