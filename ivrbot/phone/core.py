"""The Phone's calls: bookkeeping, dial, answer, hangup, send_dtmf_tone, and what the event
channel says about them."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack

from ivrbot import __version__
from ivrbot.errors import PhoneException
from ivrbot.events import Event, now_ms
from ivrbot.numbers import called_party_uri
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.session import PhoneSession
from ivrbot.phone.transport import GatewayUnreachable, Response

log = logging.getLogger(__name__)
EARLY_EVENTS_MAX = 32  # calls and conferences whose events came before their POST's reply

MEDIA_TYPES = ("audio", "video")
DTMF_TONES = re.compile(r"^[0-9*#A-Da-d]+$")
MEDIA_TIMEOUT_S = 10.0


class PhoneCore(PhoneSession):
    """Calls on top of the session; :class:`ivrbot.phone.phone.Phone` adds in-call control
    and conferences."""

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
        body = {"call": {"calledParty": uri, "sdp": await call.offer()}}
        self.foreground = call
        resp = await self._request(method, code, "POST", f"{self.session_path}/calls", body)
        if resp.status != 201:
            await self._forget(call, CallState.DISCONNECTED)
            self._api_fail(method, code, resp)
        call.id = resp.headers["Location"].rsplit("/", 1)[-1]
        call.set_state(CallState.CONNECTING)
        self.publish(Event.CALL_CONNECTING, call.event_data())
        for obj in self._early.pop(call.id, []):  # events that overtook the reply
            await self._on_channel_event(obj)
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
        body = {"callsMediaModifications": {"sdp": await call.answer(call.remote_sdp)}}
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

    async def _end_call(
        self, call: Call, reason: str | None, message: str = "Call terminated"
    ) -> None:
        """End a call from this side (``reason`` is the x-delete-reason, None: no request;
        ``message`` goes with call:disconnected)."""
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
        self.publish(Event.CALL_DISCONNECTED, call.event_data(message=message))

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
            if any(c.id is None for c in self.calls):  # a dial's reply is on its way
                self._keep_early(url.rstrip("/").rsplit("/", 1)[-1], obj)
            return
        elif state == "session-open" and obj.get("provisionalSDP"):
            # early media: the answer now (ringback is heard), connected when answered
            await self._set_answer(call, obj.get("sdp"))
            self.publish(Event.CALL_RINGBACK_PROVIDED, call.event_data())
        elif state == "session-open" or (
            state == "session-modified"
            and call.state == CallState.CONNECTING
            and call.direction == "outgoing"
            and not obj.get("reason")
        ):
            await self._set_answer(call, obj.get("sdp"))
            if call.direction == "incoming" or (call.media is not None and call.media.negotiated):
                self._spawn(self._when_media_up(call))
        elif state == "session-terminated":
            if "reason" in obj:  # without one it is about this Phone's own DELETE
                await self._remote_ended(call, str(obj["reason"]))
        elif state == "mod-terminated":
            self._mod_terminated(call, obj)
        else:
            await self._on_call_changed(call, str(state), obj)

    def _keep_early(self, cid: str, obj: dict[str, Any]) -> None:
        """Keep events that may belong to a call or conference whose POST has not returned."""
        self._early.setdefault(cid, []).append(obj)
        while len(self._early) > EARLY_EVENTS_MAX:
            del self._early[next(iter(self._early))]

    @staticmethod
    def _mod_terminated(call: Call, obj: dict[str, Any]) -> None:
        """A media change settled: whoever waits for that modId takes it from here."""
        future = call.mod_result(str(obj.get("modId", "")))
        if not future.done():
            future.set_result(obj)

    @staticmethod
    async def _set_answer(call: Call, sdp: Any) -> None:
        """Apply the gateway's answer once (it may come early, for ringback, and again)."""
        if isinstance(sdp, str) and call.direction == "outgoing" and call.media is not None:
            await call.media.accept_answer(sdp)

    async def _when_media_up(self, call: Call, connected: Event = Event.CALL_CONNECTED) -> None:
        """Connected once the gateway said so and ICE and DTLS are up (``connected`` is the
        event to publish: call:connected, or conference:connected)."""
        try:
            await asyncio.wait_for(call.media_up.wait(), MEDIA_TIMEOUT_S)
        except TimeoutError:
            await self._media_failed(call)
            return
        if call.state == CallState.CONNECTING and call.media is not None and call.media.up:
            call.set_state(CallState.CONNECTED)
            self.publish(Event.MEDIA_ESTABLISHED, call.event_data())
            self.publish(connected, call.event_data())

    async def _media_failed(self, call: Call) -> None:
        if call.state not in ENDED:
            lost = call.media_up.is_set()  # it was up: the gateway's side went away
            log.warning("%s: media of call %d %s", self.name, call.index,
                        "lost" if lost else "failed")  # fmt: skip
            await self._end_call(call, "terminate", "Connection lost" if lost else "Media failed")

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

    async def _offer_change(
        self,
        method: str,
        code: str,
        call: Call,
        direction: str,
        path: str,
        headers: dict[str, str],
        body_key: str,
        extra: dict[str, str] | None = None,
    ) -> Response:
        """Send a new offer of ``call``'s media (``direction``: sendonly to hold, sendrecv)
        with a request that changes it; the answer comes in ``mod-terminated``."""
        media = call.ensure_media()
        try:
            body = {body_key: {"sdp": await media.reoffer(direction), **(extra or {})}}
            resp = await self._request(method, code, "PUT", path, body, headers)
            if not resp.ok:
                self._api_fail(method, code, resp)
        except Exception as exc:
            media.revert()
            if isinstance(exc, PhoneException):
                raise
            self._fail(method, code, f"could not offer the call's new media: {exc}")
        return resp

    async def _change_settled(
        self, method: str, code: str, call: Call, mod_id: str | None, timeout: float | None
    ) -> dict[str, Any]:
        """Wait for ``mod-terminated`` of ``mod_id`` and apply the answer it carries."""
        if not mod_id:  # a gateway that gives no modId answers nothing
            return {}
        future = call.mod_result(mod_id)
        try:
            obj = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self._fail(method, code, "the gateway did not settle the media change")
        except asyncio.CancelledError:
            if not future.cancelled():  # this task is cancelled, not the call ended
                raise
            self._fail(method, code, "the call ended before its media change was settled")
        sdp = obj.get("sdp")
        if isinstance(sdp, str) and call.media is not None:
            await call.media.accept_answer(sdp)
        return obj

    async def _media_change(
        self, method: str, code: str, call: Call, action: str, direction: str
    ) -> None:
        """Hold or resume ``call``: offer, request, then the answer from mod-terminated."""
        headers = {"x-calls-action": action}
        path = f"{self.session_path}/calls/{call.id}"
        resp = await self._offer_change(
            method, code, call, direction, path, headers, "callsMediaModifications"
        )
        await self._change_settled(method, code, call, resp.headers.get("x-modId"), MEDIA_TIMEOUT_S)

    async def _hold_call(self, call: Call, method: str, code: str, auto: bool) -> None:
        await self._media_change(method, code, call, "initiate-call-hold", "sendonly")
        call.auto_held = auto
        call.set_state(CallState.HELD)
        self.publish(Event.CALL_HELD, call.event_data())

    async def _resume_call(self, call: Call, method: str, code: str) -> None:
        await self._media_change(method, code, call, "initiate-call-resume", "sendrecv")
        call.auto_held = False
        call.set_state(CallState.CONNECTED)
        self.publish(Event.CALL_RESUMED, call.event_data())

    async def _on_call_changed(self, call: Call, state: str, obj: dict[str, Any]) -> None:
        """Channel events of a call beyond open/terminated (see CallControl)."""

    async def _on_conference_event(self, obj: dict[str, Any]) -> None:
        """Channel events of type 'conferences' (see ConferenceMethods)."""
