"""A Phone's lines: its calls and conferences (at most one pending, one in front, two in
all: docs/spec/phone-api.md, "Call states"), and what every call goes through whatever its
kind: ending, being forgotten, hold and resume, a media change settled by the gateway,
media coming up or failing, the far end ending it. What differs between a call and a
conference is data on the call (:class:`ivrbot.phone.call.CallKind`), not code here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiortc import MediaStreamTrack

from ivrbot.errors import PhoneException
from ivrbot.events import CallEnded, Event
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.negotiation import Negotiation
from ivrbot.phone.publisher import Publisher
from ivrbot.phone.session import PhoneSession
from ivrbot.phone.transport import Response

if TYPE_CHECKING:
    from ivrbot.phone.phone import Phone

log = logging.getLogger(__name__)
EARLY_EVENTS_MAX = 32  # calls and conferences whose events came before their POST's reply
MEDIA_TIMEOUT_S = 10.0
AnyCall = TypeVar("AnyCall", bound=Call)
ChannelHandler = Callable[[dict[str, Any]], Awaitable[None]]


class Lines:
    """The calls of one Phone and the steps they share (the session's CallKeeper)."""

    def __init__(
        self, phone: Phone, session: PhoneSession, publisher: Publisher, negotiation: Negotiation
    ) -> None:
        self.phone = phone
        self.session = session
        self.publisher = publisher
        self.negotiation = negotiation
        self.calls: list[Call] = []
        self.foreground: Call | None = None  # the current call; a second one waits on hold
        self._next_index = 0
        # channel events of a call or conference whose POST has not returned yet, by id
        self._early: dict[str, list[dict[str, Any]]] = {}
        self._channel: dict[str, ChannelHandler] = {}  # event object type -> the part's reader

    # which calls ---------------------------------------------------------------------------
    def new(self, cls: type[AnyCall], direction: str, peer: str, **options: Any) -> AnyCall:
        self._next_index += 1
        call = cls(self.phone, self._next_index, direction, peer, on_lost=self.media_failed,
                   **options)  # fmt: skip
        self.calls.append(call)
        return call

    @property
    def current(self) -> Call | None:
        call = self.foreground
        return call if call is not None and call.state not in ENDED else None

    @property
    def background(self) -> Call | None:
        return next(
            (c for c in self.calls if c is not self.foreground and c.state not in ENDED
             and c.state != CallState.CREATED), None,
        )  # fmt: skip

    def live(self) -> list[Call]:
        return [c for c in self.calls if c.state not in ENDED]

    def pending_incoming(self, breed: str | None = None) -> Call | None:
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

    def by_id(self, cid: str, breed: str) -> Call | None:
        return next((c for c in self.calls if c.id == cid and c.breed == breed), None)

    def path(self, call: Call) -> str:
        return f"{self.session.session_path}/{call.kind.resource}/{call.id}"

    def check_media(self, method: str, codes: tuple[str, str], local: Any, remote: Any) -> None:
        if local is not None and not isinstance(local, MediaStreamTrack):
            self.publisher.fail(
                method, codes[0], "local_media must be an audio track (MediaStreamTrack)"
            )
        if remote is not None and not callable(remote):
            self.publisher.fail(
                method, codes[1], "remote_media must be a callable receiving audio frames"
            )

    # the event channel (CallKeeper) ----------------------------------------------------------
    def read_channel(self, kind: str, handler: ChannelHandler) -> None:
        """Hand event objects of type ``kind`` ('calls', 'conferences') to ``handler``."""
        self._channel[kind] = handler

    async def on_channel_event(self, obj: dict[str, Any]) -> None:
        handler = self._channel.get(str(obj.get("type", "")))
        if handler is not None:
            await handler(obj)

    def keep_early(self, cid: str, obj: dict[str, Any]) -> None:
        """Keep events that may belong to a call or conference whose POST has not returned."""
        self._early.setdefault(cid, []).append(obj)
        while len(self._early) > EARLY_EVENTS_MAX:
            del self._early[next(iter(self._early))]

    async def replay_early(self, call: Call) -> None:
        """Events that overtook the reply naming ``call``'s id, now that it is known."""
        for obj in self._early.pop(call.id or "", []):
            await self.on_channel_event(obj)

    # ending --------------------------------------------------------------------------------
    @property
    def has_calls(self) -> bool:
        return bool(self.calls)

    async def end_all(self) -> None:
        for call in list(self.calls):
            await self.end(call, "terminate" if call.state != CallState.CREATED else None)

    async def lose_all(self, message: str) -> None:
        in_back = {c for c in self.calls if self._in_back(c)}
        for call in list(self.calls):
            await self.forget(call, CallState.DISCONNECTED)
            ended = call.event_data(CallEnded, message=message, background=call in in_back)
            self.publisher.publish(Event.CALL_DISCONNECTED, ended)

    def _in_back(self, call: Call) -> bool:
        return call is not self.foreground and call.state != CallState.CREATED

    async def end(self, call: Call, reason: str | None, message: str = "Call terminated") -> None:
        """End a call from this side (``reason`` is the x-delete-reason, None: no request;
        ``message`` goes with call:disconnected)."""
        if call.state in ENDED:
            return
        call.set_state(CallState.DISCONNECTING)
        self.publisher.publish(call.kind.disconnecting, call.event_data())
        if reason and call.id and self.session.session_path:
            headers = {"x-delete-reason": reason}
            await self.session.request_quietly("DELETE", self.path(call), headers)
        await self.ended(call, CallState.DISCONNECTED, call.kind.ended, call.end_message(message))

    async def ended(self, call: Call, state: CallState, event: Event, message: str = "") -> None:
        """``call`` is over (``state``): forget it and tell so with ``event``."""
        background = event == Event.CALL_DISCONNECTED and self._in_back(call)
        await self.forget(call, state)
        payload = call.event_data(CallEnded, message=message, background=background)
        self.publisher.publish(event, payload)

    async def forget(self, call: Call, state: CallState) -> None:
        """The call is over here: close its media; the remaining call comes to the front."""
        call.set_state(state)
        await call.close_media()
        if call in self.calls:
            self.calls.remove(call)
        if call is self.foreground:
            self.foreground = self.background
            remaining = self.foreground
            if remaining is not None and remaining.auto_held and remaining.state == CallState.HELD:
                self.publisher.spawn(self._auto_resume(remaining))

    async def _auto_resume(self, call: Call) -> None:
        try:
            await self.resume(call, "resume", "2600")
        except PhoneException:
            log.warning("%s: could not resume call %d", self.publisher.name, call.index)

    async def remote_ended(self, call: Call, reason: str) -> None:
        """The far end (or the gateway) ended ``call`` with ``reason``."""
        call.end_reason = reason
        kind = call.kind
        if call.state == CallState.CREATED and call.direction == "incoming":
            await self.ended(call, CallState.CANCELED, kind.canceled, reason)
        elif call.state == CallState.CONNECTING and reason == "User busy" and kind.busy:
            await self.ended(call, CallState.REJECTED, kind.busy, reason)
        elif call.state not in ENDED:
            await self.ended(call, CallState.DISCONNECTED, kind.ended, reason)

    # media coming up, failing ------------------------------------------------------------------
    async def when_media_up(self, call: Call) -> None:
        """Connected once the gateway said so and ICE and DTLS are up (call:connected, or
        conference:connected)."""
        try:
            await asyncio.wait_for(call.media_up.wait(), MEDIA_TIMEOUT_S)
        except TimeoutError:
            await self.media_failed(call)
            return
        if call.state == CallState.CONNECTING and call.media_flows:
            call.set_state(CallState.CONNECTED)
            self.publisher.publish(Event.MEDIA_ESTABLISHED, call.event_data())
            self.publisher.publish(call.kind.connected, call.event_data())

    async def media_failed(self, call: Call) -> None:
        if call.state not in ENDED:
            lost = call.media_up.is_set()  # it was up: the gateway's side went away
            log.warning("%s: media of call %d %s", self.publisher.name, call.index,
                        "lost" if lost else "failed")  # fmt: skip
            await self.end(call, "terminate", "Connection lost" if lost else "Media failed")

    # requests on a call --------------------------------------------------------------------------
    async def action(
        self,
        method: str,
        code: str,
        call: Call,
        action: str,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Response:
        """``PUT`` the call (or conference) with ``action``; a refusal fails ``method``."""
        headers = {call.kind.action_header: action, **(headers or {})}
        resp = await self.session.request(method, code, "PUT", self.path(call), body or {}, headers)
        if not resp.ok:
            self.session.api_fail(method, code, resp)
        return resp

    async def change_media(
        self,
        method: str,
        code: str,
        call: Call,
        action: str,
        direction: str,
        extra: dict[str, str] | None = None,
    ) -> Response:
        """Send a new offer of ``call``'s media (``direction``: sendonly to hold, sendrecv)
        with ``action``; the answer comes in ``mod-terminated`` (:meth:`settled`)."""
        try:
            offer = await self.negotiation.reoffer(call, direction)
            body = {call.kind.modifications: {**offer, **(extra or {})}}
            return await self.action(method, code, call, action, body=body)
        except Exception as exc:
            self.negotiation.revert(call)
            if isinstance(exc, PhoneException):
                raise
            self.publisher.fail(method, code, f"could not offer the call's new media: {exc}")

    async def settled(
        self, method: str, code: str, call: Call, mod_id: str | None, timeout: float | None
    ) -> dict[str, Any]:
        """Wait for ``mod-terminated`` of ``mod_id`` and apply the answer it carries."""
        if not mod_id:  # a gateway that gives no modId answers nothing
            return {}
        future = call.mod_result(mod_id)
        try:
            obj = await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            self.publisher.fail(method, code, "the gateway did not settle the media change")
        except asyncio.CancelledError:
            if not future.cancelled():  # this task is cancelled, not the call ended
                raise
            self.publisher.fail(method, code, "the call ended before its media change was settled")
        await self.negotiation.take_answer(call, obj)
        return obj

    @staticmethod
    def mod_terminated(call: Call, obj: dict[str, Any]) -> None:
        """A media change settled: whoever waits for that modId takes it from here."""
        future = call.mod_result(str(obj.get("modId", "")))
        if not future.done():
            future.set_result(obj)

    # hold and resume (calls and conferences alike) --------------------------------------------
    async def _hold_or_resume(self, call: Call, method: str, code: str, hold: bool) -> None:
        kind = call.kind
        action = kind.hold_action if hold else kind.resume_action
        resp = await self.change_media(
            method, code, call, action, "sendonly" if hold else "sendrecv"
        )
        await self.settled(method, code, call, resp.headers.get("x-modId"), MEDIA_TIMEOUT_S)

    async def hold(self, call: Call, method: str, code: str, auto: bool) -> None:
        await self._hold_or_resume(call, method, code, hold=True)
        call.set_state(CallState.HELD, auto=auto)
        self.publisher.publish(call.kind.held, call.event_data())

    async def resume(self, call: Call, method: str, code: str) -> None:
        await self._hold_or_resume(call, method, code, hold=False)
        call.set_state(CallState.CONNECTED)
        self.publisher.publish(call.kind.resumed, call.event_data())

    async def hold_current(self, method: str, code: str) -> None:
        """Hold the call in front, if connected (it resumes when the new one ends)."""
        current = self.current
        if current is not None and current.state == CallState.CONNECTED:
            await self.hold(current, method, code, auto=True)
