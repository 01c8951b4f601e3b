"""The Phone's call methods (docs/spec/phone-api.md: dial ... sendDTMFTone), each running
the spec's checks in order, and what the event channel says about calls. Media changes
(upgrade, downgrade and their answers) are :mod:`ivrbot.phone.modifications`'s."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn

from aiortc import MediaStreamTrack

from ivrbot.errors import PhoneError, PhoneException
from ivrbot.events import (
    CallEnded,
    CallSwitched,
    Dialing,
    Event,
    IncomingCall,
    Notification,
    Tone,
    WarningMessage,
)
from ivrbot.media.tracks import OutboundAudio
from ivrbot.numbers import called_party_uri
from ivrbot.phone.call import Call, CallState
from ivrbot.phone.lines import Lines
from ivrbot.phone.modifications import Modifications

MEDIA_TYPES = ("audio", "video")
DTMF_TONES = re.compile(r"^[0-9*#A-Da-d]+$")


class Calls:
    """Placing, answering, controlling and ending calls."""

    def __init__(self, lines: Lines, modifications: Modifications, domain: str) -> None:
        self.lines = lines
        self.session = lines.session
        self.publisher = lines.publisher
        self.negotiation = lines.negotiation
        self.modifications = modifications
        self.domain = domain
        lines.read_channel("calls", self.on_channel_event)

    def _fail(self, method: str, code: str, message: str) -> NoReturn:
        self.publisher.fail(method, code, message)

    def _common(self, method: str, offline: bool, codes: tuple[str, str]) -> Call:
        """Offline (0002, when the method checks it), not logged in, no call."""
        if offline:
            self.session.check_online(method)
        self.session.check_logged_in(method, codes[0])
        call = self.lines.current
        if call is None:
            self._fail(method, codes[1], "no call")
        return call

    def _check_destination(self, method: str, codes: tuple[str, ...], destination: Any) -> str:
        if destination is None:
            self._fail(method, codes[0], f"{method} needs a destination")
        if not isinstance(destination, str) or not destination.strip():
            self._fail(method, codes[1], "destination must be a non-empty string")
        if "sip:" in destination or "tel:" in destination:
            self._fail(method, codes[2], "destination must not contain sip: or tel:")
        if destination.count("@") > 1:
            self._fail(method, codes[3], "destination has more than one @")
        return destination

    # placing ---------------------------------------------------------------------------------
    async def dial(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
    ) -> Call:
        self.session.check_online("dial")
        destination = self._check_destination("dial", ("2201", "2211", "2212", "2213"), destination)
        if media_type not in MEDIA_TYPES:
            self._fail("dial", "2221", "media_type must be 'audio' or 'video'")
        self.lines.check_media("dial", ("2231", "2232"), local_media, remote_media)
        self.session.check_logged_in("dial", "2241")
        current = self.lines.current
        if current is not None and current.state in (CallState.CREATED, CallState.CONNECTING):
            self._fail("dial", "2251", "a call is still connecting")
        if current is not None:
            self._fail("dial", "2252", "a call is already active")
        return await self._place("dial", "2200", destination, media_type, local_media, remote_media)

    async def add_call(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Any = None,
    ) -> Call:
        """Hold the current call (resumed automatically later) and dial a second one."""
        codes = ("3901", "3911", "3912", "3913")
        destination = self._check_destination("add_call", codes, destination)
        if media_type not in MEDIA_TYPES:
            self._fail("add_call", "3921", "media_type must be 'audio' or 'video'")
        self.lines.check_media("add_call", ("3931", "3932"), local_media, remote_media)
        self.session.check_logged_in("add_call", "3941")
        current = self.lines.current
        if current is None or current.state not in (CallState.CONNECTED, CallState.HELD):
            self._fail("add_call", "3951", "there is no established call to add a call to")
        if len(self.lines.live()) >= 2:
            self._fail("add_call", "3961", "there are already two calls")
        if current.state == CallState.CONNECTED:
            await self.lines.hold(current, "add_call", "3900", auto=True)
        return await self._place(
            "add_call", "3900", destination, media_type, local_media, remote_media
        )

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
        call = self.lines.new(
            Call, "outgoing", uri, media_type=media_type, local_media=local_media,
            remote_media=remote_media,
        )  # fmt: skip
        self.publisher.publish(Event.DIALING, Dialing(uri, media_type))
        body = {"call": {"calledParty": uri, **await self.negotiation.offer(call)}}
        self.lines.foreground = call
        path = f"{self.session.session_path}/calls"
        resp = await self.session.request(method, code, "POST", path, body)
        if resp.status != 201:
            await self.lines.forget(call, CallState.DISCONNECTED)
            self.session.api_fail(method, code, resp)
        call.id = resp.headers["Location"].rsplit("/", 1)[-1]
        call.set_state(CallState.CONNECTING)
        self.publisher.publish(Event.CALL_CONNECTING, call.event_data())
        await self.lines.replay_early(call)
        return call

    # answering, refusing, ending -----------------------------------------------------------------
    async def answer(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        action: str | None = None,
    ) -> Call:
        lines = self.lines
        self.session.check_online("answer")
        lines.check_media("answer", ("2311", "2312"), local_media, remote_media)
        self.session.check_logged_in("answer", "2321")
        call = lines.pending_incoming("call")
        if call is None:
            self._fail("answer", "2331", "no incoming call to answer")
        others = [c for c in lines.live() if c is not call]
        if others and action not in ("hold", "end"):
            self._fail("answer", "2341", "a call is in progress: action must be 'hold' or 'end'")
        if others and action == "end":
            for other in others:
                await lines.end(other, "terminate")
        elif others and lines.foreground is not None:
            if lines.foreground.state == CallState.CONNECTED:
                await lines.hold(lines.foreground, "answer", "2300", auto=True)
        if local_media is not None:
            call.local_media = local_media
        if remote_media is not None:
            call.remote_media = remote_media
        self.publisher.publish(Event.ANSWERING, IncomingCall(call.peer, call.media_type))
        body = {call.kind.modifications: await self.negotiation.answer(call)}
        resp = await self.session.request(
            "answer", "2300", "PUT", lines.path(call), body, {"x-calls-action": "call-answer"}
        )
        if not resp.ok:
            await lines.forget(call, CallState.DISCONNECTED)
            self.session.api_fail("answer", "2300", resp)
        lines.foreground = call
        call.set_state(CallState.CONNECTING)
        self.publisher.publish(Event.CALL_CONNECTING, call.event_data())
        return call

    async def hangup(self) -> None:
        self.session.check_online("hangup")
        self.session.check_logged_in("hangup", "2401")
        call = self.lines.current
        if call is None or call.state in (CallState.CREATED, CallState.DISCONNECTING):
            self._fail("hangup", "2402", "no active call")
        await self.lines.end(call, "terminate")

    async def reject(self) -> None:
        self.session.check_online("reject")
        self.session.check_logged_in("reject", "3001")
        call = self.lines.pending_incoming("call")
        if call is None:
            self._fail("reject", "3002", "no incoming call to reject")
        path = self.lines.path(call)
        # no longer pending from here on: the next invitation may ring this Phone at once
        await self.lines.forget(call, CallState.REJECTED)
        resp = await self.session.request(
            "reject", "3000", "DELETE", path, headers={"x-delete-reason": "reject"}
        )
        if not resp.ok:
            self.session.api_fail("reject", "3000", resp)
        self.publisher.publish(Event.CALL_REJECTED, call.event_data(CallEnded))

    async def cancel(self) -> None:
        self.session.check_online("cancel")
        self.session.check_logged_in("cancel", "2901")
        call = self.lines.current
        if call is None or call.direction != "outgoing" or call.state != CallState.CONNECTING:
            self._fail("cancel", "2902", "no outgoing call waiting for an answer")
        resp = await self.session.request(
            "cancel", "2900", "DELETE", self.lines.path(call),
            headers={"x-delete-reason": "cancel"},
        )  # fmt: skip
        if not resp.ok:
            self.session.api_fail("cancel", "2900", resp)
        await self.lines.ended(call, CallState.CANCELED, Event.CALL_CANCELED)

    # in the call -----------------------------------------------------------------------------------
    def _set_muted(self, method: str, codes: tuple[str, str, str], muted: bool) -> None:
        call = self._common(method, False, codes[:2])
        track = call.local_media
        if not isinstance(track, OutboundAudio):
            self._fail(method, codes[2], "mute works on the Phone's own audio track")
        if track.muted == muted:
            self.publisher.publish(Event.WARNING, WarningMessage(f"the call is already {method}d"))
            return
        track.muted = muted
        self.publisher.publish(Event.CALL_MUTED if muted else Event.CALL_UNMUTED, call.event_data())

    async def mute(self) -> None:
        self._set_muted("mute", ("2701", "2702", "2700"), True)

    async def unmute(self) -> None:
        self._set_muted("unmute", ("2801", "2802", "2800"), False)

    async def hold(self) -> None:
        call = self._common("hold", False, ("2501", "2502"))
        if call.state != CallState.CONNECTED:
            self._fail("hold", "2503", f"only a connected call can be held (it is {call.state})")
        await self.lines.hold(call, "hold", "2500", auto=False)

    async def resume(self) -> None:
        call = self._common("resume", False, ("2601", "2602"))
        if call.state != CallState.HELD:
            self._fail("resume", "2603", f"only a held call can be resumed (it is {call.state})")
        await self.lines.resume(call, "resume", "2600")

    async def move(self) -> None:
        call = self._common("move", False, ("4001", "4002"))
        if call.state != CallState.CONNECTED:
            self._fail("move", "4003", f"only a connected call can be moved (it is {call.state})")
        if call.breed == "conference":
            self._fail("move", "4004", "a conference cannot be moved")
        # before the request: the gateway's move-terminated may arrive before its reply
        call.set_state(CallState.MOVE_INITIATED)
        try:
            await self.lines.action("move", "4000", call, "initiate-call-move")
        except PhoneException:
            call.set_state(CallState.CONNECTED)
            raise

    async def switch_call(self) -> None:
        """Swap the foreground and background calls (hold one, resume the other)."""
        self.session.check_logged_in("switch_call", "4201")
        current = self.lines.current
        if current is None:
            self._fail("switch_call", "4202", "no call")
        other = self.lines.background
        if other is None:
            self._fail("switch_call", "4203", "switching needs two calls")
        if current.state == CallState.CONNECTED:
            await self.lines.hold(current, "switch_call", "4200", auto=True)
        if other.state == CallState.HELD:
            await self.lines.resume(other, "switch_call", "4200")
        self.lines.foreground = other
        switched = CallSwitched(current.event_data(), other.event_data())
        self.publisher.publish(Event.SESSION_CALL_SWITCHED, switched)

    async def transfer(self) -> None:
        """Join the far parties of the two calls together; this Phone leaves both."""
        self.session.check_online("transfer")
        self.session.check_logged_in("transfer", "4101")
        current = self.lines.current
        if current is None:
            self._fail("transfer", "4102", "no call")
        background = self.lines.background
        if background is not None and background.state != CallState.HELD:
            self._fail("transfer", "4103", "the background call must be on hold")
        if current.breed == "conference" or (background and background.breed == "conference"):
            self._fail("transfer", "4104", "a conference cannot be transferred")
        if background is None:
            self._fail("transfer", "4105", "transfer needs two calls")
        before = current.state
        current.set_state(CallState.TRANSFERRING)
        self.publisher.publish(Event.CALL_TRANSFERRING, current.event_data())
        headers = {"x-transferTargetCallId": str(background.id)}
        try:
            await self.lines.action("transfer", "4100", current, "initiate-call-transfer", headers)
        except PhoneException:
            if current.state == CallState.TRANSFERRING:  # refused: as it was
                current.set_state(before)
            raise

    async def send_dtmf_tone(self, input: str | None = None, gap: int = 70) -> None:
        """Send keypad tones on the current call (RFC 4733), publishing dtmf:tone-sent each."""
        method = "send_dtmf_tone"
        self.session.check_online(method)
        if input is None:
            self._fail(method, "4711", "send_dtmf_tone needs input")
        if not isinstance(input, str) or not DTMF_TONES.match(input) or gap < 50:
            self._fail(method, "4712", "input must be 0-9 * # A-D and gap >= 50 ms")
        call = self._common(method, False, ("4721", "4731"))
        if call.state != CallState.CONNECTED:
            self._fail(method, "4741", "the call is not connected")
        for tone in input:
            self.publisher.publish(Event.DTMF_TONE_SENDING, call.event_data(Tone, tone=tone))
            if not await call.send_dtmf(tone, gap):
                self._fail(method, "4700", "the far end did not negotiate telephone-event")
            self.publisher.publish(Event.DTMF_TONE_SENT, call.event_data(Tone, tone=tone))

    # what the gateway tells ---------------------------------------------------------------------
    async def on_channel_event(self, obj: dict[str, Any]) -> None:
        """An event object of type 'calls' from the event channel."""
        lines = self.lines
        state, url = obj.get("state"), str(obj.get("resourceURL", ""))
        cid = url.rstrip("/").rsplit("/", 1)[-1]
        call = lines.by_id(cid, "call")
        if state == "invitation-received":
            await self._invitation(obj, url, cid)
        elif call is None:
            if any(c.id is None for c in lines.calls):  # a dial's reply is on its way
                lines.keep_early(cid, obj)
        elif state == "session-open" and obj.get("provisionalSDP"):
            # early media: the answer now (ringback is heard), connected when answered
            await self.negotiation.take_answer(call, obj)
            self.publisher.publish(Event.CALL_RINGBACK_PROVIDED, call.event_data())
        elif state == "session-open" or (
            state == "session-modified"
            and call.state == CallState.CONNECTING
            and call.direction == "outgoing"
            and not obj.get("reason")
        ):
            await self.negotiation.take_answer(call, obj)
            if call.direction == "incoming" or self.negotiation.negotiated(call):
                self.publisher.spawn(lines.when_media_up(call))
        elif state == "session-terminated":
            if "reason" in obj:  # without one it is about this Phone's own DELETE
                await lines.remote_ended(call, str(obj["reason"]))
        elif state == "mod-terminated":
            lines.mod_terminated(call, obj)
        elif state == "mod-received":
            self.modifications.offered(call, obj)
        else:
            await self._changed(call, str(state), str(obj.get("reason", "")), obj)

    async def _invitation(self, obj: dict[str, Any], url: str, cid: str) -> None:
        lines = self.lines
        if lines.pending_incoming() is not None or len(lines.calls) >= 2:
            notice = Notification("a further incoming call was refused")
            self.publisher.publish(Event.NOTIFICATION, notice)
            await self.session.transport.request(
                "DELETE", url, headers={"x-delete-reason": "reject"}
            )
            return
        call = lines.new(Call, "incoming", str(obj.get("from", "")))
        call.id = cid
        self.negotiation.take_offer(call, obj)
        self.publisher.publish(Event.CALL_INCOMING, IncomingCall(call.peer, call.media_type))

    async def _changed(self, call: Call, state: str, reason: str, obj: dict[str, Any]) -> None:
        """Transfers and moves, as the gateway settles them; the far end's hold."""
        lines, publish = self.lines, self.publisher.publish
        if state == "session-modified" and reason in ("held", "resumed"):
            # ivrbot's: the far end holds / resumes (told to Phones that declared hold audio)
            call.remote_held = reason == "held"
            event = Event.CALL_REMOTE_HELD if call.remote_held else Event.CALL_REMOTE_RESUMED
            publish(event, call.event_data())
        elif state == "session-modified" and reason == "transferred":
            call.peer = str(obj.get("from", call.peer))
            publish(
                Event.NOTIFICATION, Notification(f"now talking to {call.peer}", call.event_data())
            )
        elif state == "transfer-terminated" and reason == "success":
            for other in lines.live():
                await lines.forget(other, CallState.TRANSFERRED)
                publish(Event.CALL_TRANSFERRED, other.event_data())
        elif state == "transfer-terminated":
            call.set_state(CallState.CONNECTED)
            failed = f"transfer failed: {reason}"
            publish(Event.ERROR, PhoneError("4100", "transfer", failed))
        elif state == "move-terminated" and reason == "moved":
            await lines.forget(call, CallState.MOVED)
            publish(Event.CALL_MOVED, call.event_data())
        elif state == "move-terminated":
            call.set_state(CallState.MOVE_FAILED)
            call.set_state(CallState.CONNECTED)
            publish(Event.WARNING, WarningMessage(f"the call was not moved: {reason}"))
