"""Media modification of a call (docs/spec/phone-api.md: upgrade, downgrade,
acceptModification, rejectModification): this Phone asks for another media type, or the far
end does and this Phone answers; the gateway settles it with ``mod-terminated``."""

from __future__ import annotations

from typing import Any

from ivrbot.errors import PhoneException
from ivrbot.events import Event, MediaChange
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.lines import MEDIA_TIMEOUT_S, Lines


class Modifications:
    """Upgrades and downgrades of the current call, asked or offered."""

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self.session = lines.session
        self.publisher = lines.publisher
        self.negotiation = lines.negotiation

    def _call(self, method: str, codes: tuple[str, ...]) -> Call:
        """Not logged in (codes[1]), no call (codes[2])."""
        self.session.check_logged_in(method, codes[1])
        call = self.lines.current
        if call is None:
            self.publisher.fail(method, codes[2], "no call")
        assert call is not None
        return call

    # this Phone asks -------------------------------------------------------------------------
    async def upgrade(self) -> None:
        await self._modify("upgrade", ("4600", "4601", "4602", "4603", "4604", "4605"), "video")

    async def downgrade(self) -> None:
        await self._modify("downgrade", ("4500", "4501", "4502", "4503", "4504", "4505"), "audio")

    async def _modify(self, method: str, codes: tuple[str, ...], to: str) -> None:
        fail = self.publisher.fail
        call = self._call(method, codes)
        if call.state != CallState.CONNECTED:
            fail(method, codes[3], f"the call must be connected (it is {call.state})")
        if call.media_type == to:
            fail(method, codes[4], f"the call is already {to}")
        if call.breed == "conference":
            fail(method, codes[5], "a conference cannot change media")
        kind = "upgrade" if to == "video" else "downgrade"
        resp = await self.lines.change_media(
            method, codes[0], call, "initiate-call-mod", "sendrecv", extra={"type": kind}
        )
        call.set_state(CallState.MODIFICATION_INITIATED)
        progress = call.event_data(MediaChange, new_media_type=to)
        self.publisher.publish(Event.CALL_MODIFICATION_IN_PROGRESS, progress)
        mod_id = resp.headers.get("x-modId")
        self.publisher.spawn(self._outcome(method, codes[0], call, mod_id))

    async def _outcome(self, method: str, code: str, call: Call, mod_id: str | None) -> None:
        """The far end settles this Phone's modification: the gateway's answer is applied."""
        try:
            obj = await self.lines.settled(method, code, call, mod_id, None)
        except PhoneException:  # the call ended first
            return
        if obj:
            self._settled(call, obj)

    # the far end asks --------------------------------------------------------------------------
    def offered(self, call: Call, obj: dict[str, Any]) -> None:
        """``mod-received``: the far end asks for ``newMediaType`` (with the gateway's offer)."""
        new = str(obj.get("newMediaType", ""))
        call.pending_mod = (str(obj.get("modId", "")), new)
        self.negotiation.take_offer(call, obj)
        progress = call.event_data(MediaChange, new_media_type=new)
        self.publisher.publish(Event.CALL_MODIFICATION_IN_PROGRESS, progress)

    async def accept_modification(self) -> None:
        await self._answer("accept_modification", ("4300", "4301", "4302", "4303", "4304"), True)

    async def reject_modification(self) -> None:
        await self._answer("reject_modification", ("4400", "4401", "4402", "4403", "4404"), False)

    async def _answer(self, method: str, codes: tuple[str, ...], accept: bool) -> None:
        fail = self.publisher.fail
        call = self._call(method, codes)
        if call.state not in (CallState.CONNECTED, CallState.HELD):
            fail(method, codes[3], f"the call must be connected or held ({call.state})")
        if call.pending_mod is None:
            fail(method, codes[4], "no media modification is pending")
        assert call.pending_mod is not None
        mod_id, _ = call.pending_mod
        action = "accept-call-mod" if accept else "reject-call-mod"
        body: dict[str, Any] = {}
        if self.negotiation.has_offer(call):  # answered either way: an offer needs its answer
            try:
                body = {call.kind.modifications: await self.negotiation.answer(call)}
            except Exception as exc:
                fail(method, codes[0], f"the offered media cannot be used: {exc}")
        headers = {"x-modId": mod_id}
        await self.lines.action(method, codes[0], call, action, headers=headers, body=body)
        obj = await self.lines.settled(method, codes[0], call, mod_id, MEDIA_TIMEOUT_S)
        self._settled(call, obj)

    def _settled(self, call: Call, obj: dict[str, Any]) -> None:
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
        change = call.event_data(MediaChange, new_media_type=call.media_type, accepted=accepted)
        self.publisher.publish(Event.CALL_MEDIA_MODIFICATION, change)
