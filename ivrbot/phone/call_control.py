"""The Phone's in-call methods: reject, cancel, mute, hold, resume, move, switch, transfer,
a second call, and media modification. Each runs the spec's checks in order."""

from __future__ import annotations

from typing import Any

from aiortc import MediaStreamTrack

from ivrbot.errors import PhoneException
from ivrbot.events import Event
from ivrbot.media.tracks import OutboundAudio
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.core import MEDIA_TIMEOUT_S, PhoneCore


class CallControl(PhoneCore):
    """Part of :class:`ivrbot.phone.phone.Phone`."""

    # helpers --------------------------------------------------------------------------------
    def _common(self, method: str, offline: bool, codes: tuple[str, str]) -> Call:
        """Offline (0002, when the method checks it), not logged in, no call."""
        if offline and not self.online:
            self._fail(method, "0002", "network offline")
        if not self.logged_in:
            self._fail(method, codes[0], "not logged in")
        call = self.current_call
        if call is None:
            self._fail(method, codes[1], "no call")
        return call

    # pending calls ----------------------------------------------------------------------------
    async def reject(self) -> None:
        if not self.online:
            self._fail("reject", "0002", "network offline")
        if not self.logged_in:
            self._fail("reject", "3001", "not logged in")
        call = self._pending_incoming("call")
        if call is None:
            self._fail("reject", "3002", "no incoming call to reject")
        path = f"{self.session_path}/calls/{call.id}"
        # no longer pending from here on: the next invitation may ring this Phone at once
        await self._forget(call, CallState.REJECTED)
        resp = await self._request(
            "reject", "3000", "DELETE", path, headers={"x-delete-reason": "reject"}
        )
        if not resp.ok:
            self._api_fail("reject", "3000", resp)
        self.publish(Event.CALL_REJECTED, call.event_data())

    async def cancel(self) -> None:
        if not self.online:
            self._fail("cancel", "0002", "network offline")
        if not self.logged_in:
            self._fail("cancel", "2901", "not logged in")
        call = self.current_call
        if call is None or call.direction != "outgoing" or call.state != CallState.CONNECTING:
            self._fail("cancel", "2902", "no outgoing call waiting for an answer")
        path = f"{self.session_path}/calls/{call.id}"
        resp = await self._request(
            "cancel", "2900", "DELETE", path, headers={"x-delete-reason": "cancel"}
        )
        if not resp.ok:
            self._api_fail("cancel", "2900", resp)
        await self._forget(call, CallState.CANCELED)
        self.publish(Event.CALL_CANCELED, call.event_data())

    # local -----------------------------------------------------------------------------------
    def _set_muted(self, method: str, codes: tuple[str, str, str], muted: bool) -> None:
        call = self._common(method, False, codes[:2])
        track = call.local_media
        if not isinstance(track, OutboundAudio):
            self._fail(method, codes[2], "mute works on the Phone's own audio track")
        if track.muted == muted:
            self.publish(Event.WARNING, {"message": f"the call is already {method}d"})
            return
        track.muted = muted
        self.publish(Event.CALL_MUTED if muted else Event.CALL_UNMUTED, call.event_data())

    async def mute(self) -> None:
        self._set_muted("mute", ("2701", "2702", "2700"), True)

    async def unmute(self) -> None:
        self._set_muted("unmute", ("2801", "2802", "2800"), False)

    # hold, resume, move -------------------------------------------------------------------------
    async def hold(self) -> None:
        call = self._common("hold", False, ("2501", "2502"))
        if call.state != CallState.CONNECTED:
            self._fail("hold", "2503", f"only a connected call can be held (it is {call.state})")
        await self._hold_call(call, "hold", "2500", auto=False)

    async def resume(self) -> None:
        call = self._common("resume", False, ("2601", "2602"))
        if call.state != CallState.HELD:
            self._fail("resume", "2603", f"only a held call can be resumed (it is {call.state})")
        await self._resume_call(call, "resume", "2600")

    async def move(self) -> None:
        call = self._common("move", False, ("4001", "4002"))
        if call.state != CallState.CONNECTED:
            self._fail("move", "4003", f"only a connected call can be moved (it is {call.state})")
        if call.breed == "conference":
            self._fail("move", "4004", "a conference cannot be moved")
        # before the request: the gateway's move-terminated may arrive before its reply
        call.set_state(CallState.MOVE_INITIATED)
        try:
            await self._call_action("move", "4000", call, "initiate-call-move")
        except PhoneException:
            call.set_state(CallState.CONNECTED)
            raise

    # two calls -----------------------------------------------------------------------------------
    async def add_call(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Any = None,
    ) -> Call:
        """Hold the current call (resumed automatically later) and dial a second one."""
        if destination is None:
            self._fail("add_call", "3901", "add_call needs a destination")
        if not isinstance(destination, str) or not destination.strip():
            self._fail("add_call", "3911", "destination must be a non-empty string")
        if "sip:" in destination or destination.startswith("tel:"):
            self._fail("add_call", "3912", "destination must not contain sip: or tel:")
        if destination.count("@") > 1:
            self._fail("add_call", "3913", "destination has more than one @")
        if media_type not in ("audio", "video"):
            self._fail("add_call", "3921", "media_type must be 'audio' or 'video'")
        self._check_media("add_call", ("3931", "3932"), local_media, remote_media)
        if not self.logged_in:
            self._fail("add_call", "3941", "not logged in")
        current = self.current_call
        if current is None or current.state not in (CallState.CONNECTED, CallState.HELD):
            self._fail("add_call", "3951", "there is no established call to add a call to")
        if len([c for c in self.calls if c.state not in ENDED]) >= 2:
            self._fail("add_call", "3961", "there are already two calls")
        if current.state == CallState.CONNECTED:
            await self._hold_call(current, "add_call", "3900", auto=True)
        return await self._place(
            "add_call", "3900", destination, media_type, local_media, remote_media
        )

    async def switch_call(self) -> None:
        """Swap the foreground and background calls (hold one, resume the other)."""
        if not self.logged_in:
            self._fail("switch_call", "4201", "not logged in")
        current = self.current_call
        if current is None:
            self._fail("switch_call", "4202", "no call")
        other = self.background_call
        if other is None:
            self._fail("switch_call", "4203", "switching needs two calls")
        if current.state == CallState.CONNECTED:
            await self._hold_call(current, "switch_call", "4200", auto=True)
        if other.state == CallState.HELD:
            await self._resume_call(other, "switch_call", "4200")
        self.foreground = other
        self.publish(
            Event.SESSION_CALL_SWITCHED,
            {"from": current.event_data().to_dict(), "to": other.event_data().to_dict()},
        )

    async def transfer(self) -> None:
        """Join the far parties of the two calls together; this Phone leaves both."""
        if not self.online:
            self._fail("transfer", "0002", "network offline")
        if not self.logged_in:
            self._fail("transfer", "4101", "not logged in")
        current = self.current_call
        if current is None:
            self._fail("transfer", "4102", "no call")
        background = self.background_call
        if background is not None and background.state != CallState.HELD:
            self._fail("transfer", "4103", "the background call must be on hold")
        if current.breed == "conference" or (background and background.breed == "conference"):
            self._fail("transfer", "4104", "a conference cannot be transferred")
        if background is None:
            self._fail("transfer", "4105", "transfer needs two calls")
        assert background.id is not None
        current.set_state(CallState.TRANSFERRING)
        self.publish(Event.CALL_TRANSFERRING, current.event_data())
        await self._call_action(
            "transfer",
            "4100",
            current,
            "initiate-call-transfer",
            headers={"x-transferTargetCallId": background.id},
        )

    # media modification --------------------------------------------------------------------------
    async def _modify(self, method: str, codes: tuple[str, ...], to: str) -> None:
        call = self._common(method, False, (codes[1], codes[2]))
        if call.state != CallState.CONNECTED:
            self._fail(method, codes[3], f"the call must be connected (it is {call.state})")
        if call.media_type == to:
            self._fail(method, codes[4], f"the call is already {to}")
        if call.breed == "conference":
            self._fail(method, codes[5], "a conference cannot change media")
        kind = "upgrade" if to == "video" else "downgrade"
        path = f"{self.session_path}/calls/{call.id}"
        headers = {"x-calls-action": "initiate-call-mod"}
        resp = await self._offer_change(
            method, codes[0], call, "sendrecv", path, headers, "callsMediaModifications",
            extra={"type": kind},
        )  # fmt: skip
        call.set_state(CallState.MODIFICATION_INITIATED)
        self.publish(Event.CALL_MODIFICATION_IN_PROGRESS, call.event_data(newMediaType=to))
        self._spawn(self._modification_outcome(method, codes[0], call, resp.headers.get("x-modId")))

    async def _modification_outcome(
        self, method: str, code: str, call: Call, mod_id: str | None
    ) -> None:
        """The far end settles this Phone's modification: the gateway's answer is applied."""
        try:
            obj = await self._change_settled(method, code, call, mod_id, None)
        except PhoneException:  # the call ended first
            return
        if obj:
            self._mod_settled(call, obj)

    async def upgrade(self) -> None:
        await self._modify("upgrade", ("4600", "4601", "4602", "4603", "4604", "4605"), "video")

    async def downgrade(self) -> None:
        await self._modify("downgrade", ("4500", "4501", "4502", "4503", "4504", "4505"), "audio")

    async def _settle(self, method: str, codes: tuple[str, ...], accept: bool) -> None:
        call = self._common(method, False, (codes[1], codes[2]))
        if call.state not in (CallState.CONNECTED, CallState.HELD):
            self._fail(method, codes[3], f"the call must be connected or held ({call.state})")
        if call.pending_mod is None:
            self._fail(method, codes[4], "no media modification is pending")
        mod_id, _ = call.pending_mod
        action = "accept-call-mod" if accept else "reject-call-mod"
        body: dict[str, Any] = {}
        offer, call.mod_offer = call.mod_offer, None
        if offer is not None:  # answered either way: the gateway's offer needs its answer
            try:
                answer = await call.answer(offer)
            except Exception as exc:
                self._fail(method, codes[0], f"the offered media cannot be used: {exc}")
            body = {"callsMediaModifications": {"sdp": answer}}
        headers = {"x-modId": mod_id}
        await self._call_action(method, codes[0], call, action, headers=headers, body=body)
        obj = await self._change_settled(method, codes[0], call, mod_id, MEDIA_TIMEOUT_S)
        self._mod_settled(call, obj)

    async def accept_modification(self) -> None:
        await self._settle("accept_modification", ("4300", "4301", "4302", "4303", "4304"), True)

    async def reject_modification(self) -> None:
        await self._settle("reject_modification", ("4400", "4401", "4402", "4403", "4404"), False)

    # what the gateway tells us -------------------------------------------------------------------
    async def _on_call_changed(self, call: Call, state: str, obj: dict[str, Any]) -> None:
        reason = str(obj.get("reason", ""))
        if state == "session-modified" and reason == "transferred":
            call.peer = str(obj.get("from", call.peer))
            self.publish(Event.NOTIFICATION, call.event_data(message=f"now talking to {call.peer}"))
        elif state == "transfer-terminated" and reason == "success":
            for other in [c for c in self.calls if c.state not in ENDED]:
                await self._forget(other, CallState.TRANSFERRED)
                self.publish(Event.CALL_TRANSFERRED, other.event_data())
        elif state == "transfer-terminated":
            call.set_state(CallState.CONNECTED)
            self.publish(Event.ERROR, call.event_data(message=f"transfer failed: {reason}"))
        elif state == "move-terminated" and reason == "moved":
            await self._forget(call, CallState.MOVED)
            self.publish(Event.CALL_MOVED, call.event_data())
        elif state == "move-terminated":
            call.set_state(CallState.MOVE_FAILED)
            call.set_state(CallState.CONNECTED)
            self.publish(Event.WARNING, {"message": f"the call was not moved: {reason}"})
        elif state == "mod-received":
            new = str(obj.get("newMediaType", ""))
            call.pending_mod = (str(obj.get("modId", "")), new)
            sdp = obj.get("sdp")
            call.mod_offer = sdp if isinstance(sdp, str) else None
            self.publish(Event.CALL_MODIFICATION_IN_PROGRESS, call.event_data(newMediaType=new))

    def _mod_settled(self, call: Call, obj: dict[str, Any]) -> None:
        """A media modification (this Phone's or the far end's) is settled."""
        if call.state in ENDED:
            return
        call.pending_mod = None
        accepted = obj.get("reason") in ("success", "accepted")
        # a held call may settle a modification offered to it: it stays held
        back = CallState.HELD if call.state == CallState.HELD else CallState.CONNECTED
        if accepted:
            call.set_state(CallState.MODIFICATION_ACCEPTED)
            call.media_type = str(obj.get("newMediaType", call.media_type))
        if call.state in (CallState.MODIFICATION_INITIATED, CallState.MODIFICATION_ACCEPTED):
            call.set_state(back)
        self.publish(
            Event.CALL_MEDIA_MODIFICATION,
            call.event_data(newMediaType=call.media_type, accepted=accepted),
        )
