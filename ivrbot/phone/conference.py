"""The Phone's conference methods (docs/spec/phone-api.md: startConference ... getParticipants).

A conference is a :class:`ConferenceCall`: a :class:`~ivrbot.phone.call.Call` (one peer
connection with the gateway, which mixes) whose event data says ``callType: 'conference'``
and carries the ``invitations`` and ``participants`` maps, both keyed by the participant's
URI (``sip:bob@ivrbot.local``, ``tel:+5550001001``) with values ``{participant, status}``:

- ``participants``: who is in the conference or invited to it; status ``invited`` or
  ``joined``. An entry goes when the participant is removed, leaves or declines.
- ``invitations``: every invitation sent; status ``pending``, ``accepted``, ``rejected``,
  ``canceled``, ``removed`` or ``left``.

``hold()``, ``resume()`` and ``hangup()`` work on a conference too: this class overrides the
Phone's hold/resume/end primitives for conference calls (the host leaves the mix and rejoins
it; the participants keep hearing each other).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack

from ivrbot.errors import PhoneException
from ivrbot.events import CallEventData, Event, now_ms
from ivrbot.media.tracks import FrameSink
from ivrbot.numbers import called_party_uri
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.core import MEDIA_TIMEOUT_S, MEDIA_TYPES, PhoneCore
from ivrbot.phone.transport import GatewayUnreachable

log = logging.getLogger(__name__)

LIVE = (CallState.CONNECTING, CallState.CONNECTED, CallState.HELD)


class ConferenceCall(Call):
    """A conference as this Phone sees it: hosted (``hosting``) or joined."""

    def __init__(
        self,
        phone: PhoneCore,
        index: int,
        direction: str,
        peer: str,
        hosting: bool,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: FrameSink | None = None,
    ) -> None:
        super().__init__(phone, index, direction, peer, media_type, local_media, remote_media)
        self.breed = "conference"
        self.hosting = hosting
        self.invitations: dict[str, dict[str, str]] = {}
        self.participants: dict[str, dict[str, str]] = {}

    def event_data(self, **extra: object) -> CallEventData:
        data = super().event_data(**extra)
        maps = (
            ("invitations", {k: dict(v) for k, v in self.invitations.items()}),
            ("participants", {k: dict(v) for k, v in self.participants.items()}),
        )
        return dataclasses.replace(data, call_type="conference", extra=data.extra + maps)

    def to_info(self) -> dict[str, object]:
        return {
            "index": self.index,
            "state": self.state.value,
            "breed": "conference",
            "type": self.media_type,
            "participants": {k: dict(v) for k, v in self.participants.items()},
        }

    def set_participant(self, uri: str, status: str | None, invitation: str | None) -> None:
        """Update both maps (``status`` None: ``uri`` is no longer a participant)."""
        if status is None:
            self.participants.pop(uri, None)
        else:
            self.participants[uri] = {"participant": uri, "status": status}
        if invitation is not None:
            self.invitations[uri] = {"participant": uri, "status": invitation}


class ConferenceMethods(PhoneCore):
    """Part of :class:`ivrbot.phone.phone.Phone` (builds on PhoneCore's primitives)."""

    # helpers -------------------------------------------------------------------------------
    def _conference_path(self, call: Call) -> str:
        return f"{self.session_path}/conferences/{call.id}"

    def _conference_by_id(self, cid: str) -> ConferenceCall | None:
        return next((c for c in self.calls if isinstance(c, ConferenceCall) and c.id == cid), None)

    def _hosted_conference(self, current_only: bool = False) -> ConferenceCall | None:
        candidates = [self.current_call] if current_only else [self.current_call, *self.calls]
        return next(
            (
                c
                for c in candidates
                if isinstance(c, ConferenceCall) and c.hosting and c.state in LIVE
            ),
            None,
        )

    def _new_conference(
        self, direction: str, peer: str, hosting: bool, **media: Any
    ) -> ConferenceCall:
        self._next_index += 1
        call = ConferenceCall(self, self._next_index, direction, peer, hosting, **media)
        self.calls.append(call)
        return call

    def _live_calls(self) -> list[Call]:
        return [c for c in self.calls if c.state not in ENDED]

    async def _hold_other_call(self, method: str, code: str) -> None:
        current = self.current_call
        if current is not None and current.state == CallState.CONNECTED:
            await self._hold_call(current, method, code, auto=True)

    # the host ------------------------------------------------------------------------------
    async def start_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        media_type: str | None = "audio",
    ) -> ConferenceCall:
        """Open a conference hosted by this Phone (``media_type=None`` and nothing else: 3101)."""
        method = "start_conference"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if local_media is None and remote_media is None and media_type is None:
            self._fail(method, "3101", "start_conference needs options (media_type at least)")
        if media_type not in MEDIA_TYPES:
            self._fail(method, "3111", "media_type is required: 'audio' or 'video'")
        self._check_media(method, ("3121", "3122"), local_media, remote_media)
        if not self.logged_in:
            self._fail(method, "3131", "not logged in")
        if len(self._live_calls()) >= 2:
            self._fail(method, "3961", "there are already two calls")
        try:
            await self._hold_other_call(method, "3100")
            call = self._new_conference(
                "outgoing",
                "",
                True,
                media_type=media_type,
                local_media=local_media,
                remote_media=remote_media,
            )
            offer = await call.offer()
        except Exception as exc:
            if isinstance(exc, PhoneException):
                raise
            self._fail(method, "3100", f"could not prepare the conference's media: {exc}")
        body = {"conference": {"sdp": offer}}
        self.foreground = call
        resp = await self._request(method, "3100", "POST", f"{self.session_path}/conferences", body)
        if resp.status != 201:
            await self._forget(call, CallState.DISCONNECTED)
            self._api_fail(method, "3100", resp)
        call.id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        call.set_state(CallState.CONNECTING)
        self.publish(Event.CONFERENCE_CONNECTING, call.event_data())
        for obj in self._early.pop(call.id, []):
            await self._on_conference_event(obj)
        return call

    async def add_participant(self, id: str | None = None) -> None:
        """Invite ``id`` (a number or user@domain, as for dial) to the hosted conference."""
        method = "add_participant"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if not isinstance(id, str) or not id.strip():
            self._fail(method, "3611", "the participant must be a non-empty string")
        if "sip:" in id or "tel:" in id:
            self._fail(method, "3612", "the participant must not contain sip: or tel:")
        if id.count("@") > 1:
            self._fail(method, "3613", "the participant has more than one @")
        if not self.logged_in:
            self._fail(method, "3621", "not logged in")
        call = self._hosted_conference(current_only=True)
        if call is None:
            self._fail(method, "3631", "the current call is not a conference this Phone hosts")
        uri = called_party_uri(id.strip(), self.domain)
        if uri is None:
            self._fail(method, "3611", f"{id!r} is not a callable number or address")
        if uri in call.participants:
            self._fail(method, "3641", f"{uri} is already a participant")
        self.publish(Event.CONFERENCE_INVITATION_SENDING, {"invitee": uri, "timestamp": now_ms()})
        call.set_participant(uri, "invited", "pending")
        path = f"{self._conference_path(call)}/participants/{uri}"
        try:
            resp = await self._request(method, "3600", "PUT", path, {})
            if not resp.ok:
                self._api_fail(method, "3600", resp)
        except Exception:
            if call.participants.get(uri, {}).get("status") == "invited":
                call.set_participant(uri, None, None)
                call.invitations.pop(uri, None)
            raise
        mod_id = resp.headers.get("x-modId", "")
        self.publish(Event.CONFERENCE_INVITATION_SENT, call.event_data(invitee=uri, modId=mod_id))

    async def remove_participant(self, id: str | None = None) -> None:
        """Remove a participant (or withdraw its invitation); ``id`` as given or its URI."""
        method = "remove_participant"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if not isinstance(id, str) or not id.strip():
            self._fail(method, "3711", "remove_participant needs the participant's id")
        if not self.logged_in:
            self._fail(method, "3721", "not logged in")
        call = self._hosted_conference()
        if call is None:
            self._fail(method, "3731", "this Phone hosts no conference")
        key = id.strip()
        uri = key if key.startswith(("sip:", "tel:")) else called_party_uri(key, self.domain)
        if uri is None or uri not in call.participants:
            self._fail(method, "3700", f"{id!r} is not a participant of the conference")
        path = f"{self._conference_path(call)}/participants/{uri}"
        resp = await self._request(method, "3700", "DELETE", path)
        if not resp.ok:
            self._api_fail(method, "3700", resp)

    def get_participants(self) -> dict[str, dict[str, str]]:
        """``{uri: {participant, status}}`` of the hosted conference (invited and joined)."""
        if not self.logged_in:
            self._fail("get_participants", "3401", "not logged in")
        call = self._hosted_conference()
        if call is None:
            self._fail("get_participants", "3402", "this Phone hosts no conference")
        return {k: dict(v) for k, v in call.participants.items()}

    async def merge_call(self, conference_id: str, stay: bool = False) -> None:
        """Put the current call's far party into a conference (an ivrbot extension).

        ``conference_id`` is the id of a conference hosted by a session of this Phone's
        identity (``ConferenceCall.id``). The far party is in the mix at once, on its call as
        it is. ``stay=False``: this Phone's call ends (``call:disconnected``, message ``Call
        merged into a conference``); ``stay=True``: this Phone is in the mix too, on the same
        call. Codes (Python Phone only): 0002, not logged in 3861, no connected call 3862, the
        current call is a conference 3863, no conference id 3864, gateway refusal 3860.
        """
        method = "merge_call"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if not self.logged_in:
            self._fail(method, "3861", "not logged in")
        call = self.current_call
        if call is None or call.state != CallState.CONNECTED:
            self._fail(method, "3862", "merge_call needs a connected current call")
        if isinstance(call, ConferenceCall):
            self._fail(method, "3863", "the current call is a conference already")
        if not isinstance(conference_id, str) or not conference_id.strip():
            self._fail(method, "3864", "merge_call needs the conference's id")
        headers = {
            "x-conferenceId": conference_id.strip(),
            "x-merge-mode": "stay" if stay else "leave",
        }
        await self._call_action(method, "3860", call, "initiate-call-merge", headers=headers)

    # invitees ------------------------------------------------------------------------------
    def _pending_conference(self) -> ConferenceCall | None:
        call = self._pending_incoming()
        return call if isinstance(call, ConferenceCall) else None

    async def join_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        action: str | None = None,
    ) -> ConferenceCall:
        """Join the conference this Phone is invited to (``action`` as for answer)."""
        method = "join_conference"
        if not self.online:
            self._fail(method, "0002", "network offline")
        self._check_media(method, ("3211", "3212"), local_media, remote_media)
        if not self.logged_in:
            self._fail(method, "3221", "not logged in")
        call = self._pending_conference()
        if call is None:
            self._fail(method, "3231", "there is no conference invitation to join")
        others = [c for c in self._live_calls() if c is not call]
        if action not in (None, "hold", "end") or (others and action is None):
            self._fail(method, "3241", "action must be 'hold' or 'end' (needed with a call)")
        if others and action == "end":
            for other in others:
                await self._end_call(other, "terminate")
        elif others:
            await self._hold_other_call(method, "3200")
        if local_media is not None:
            call.local_media = local_media
        if remote_media is not None:
            call.remote_media = remote_media
        self.publish(
            Event.CONFERENCE_JOINING,
            {"from": call.peer, "mediaType": call.media_type, "codec": "", "timestamp": now_ms()},
        )
        try:
            assert call.remote_sdp is not None
            answer = await call.answer(call.remote_sdp)
        except Exception as exc:
            await self._forget(call, CallState.DISCONNECTED)
            self._fail(method, "3200", f"the invitation's media cannot be used: {exc}")
        body = {"conferenceModifications": {"sdp": answer}}
        headers = {"x-conference-action": "call-answer"}
        path = self._conference_path(call)
        resp = await self._request(method, "3200", "PUT", path, body, headers)
        if not resp.ok:
            await self._forget(call, CallState.DISCONNECTED)
            self._api_fail(method, "3200", resp)
        self.foreground = call
        call.set_state(CallState.CONNECTING)
        self.publish(Event.CONFERENCE_CONNECTING, call.event_data())
        return call

    async def reject_conference(self) -> None:
        method = "reject_conference"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if not self.logged_in:
            self._fail(method, "3301", "not logged in")
        call = self._pending_conference()
        if call is None:
            self._fail(method, "3302", "there is no conference invitation to reject")
        path = self._conference_path(call)
        resp = await self._request(
            method, "3300", "DELETE", path, headers={"x-delete-reason": "reject"}
        )
        if not resp.ok:
            self._api_fail(method, "3300", resp)
        await self._forget(call, CallState.REJECTED)
        self.publish(Event.CONFERENCE_INVITATION_REJECTED, call.event_data())

    # everyone ------------------------------------------------------------------------------
    async def end_conference(self) -> None:
        """The host ends the conference for everyone; a participant leaves it."""
        method = "end_conference"
        if not self.online:
            self._fail(method, "0002", "network offline")
        if not self.logged_in:
            self._fail(method, "3501", "not logged in")
        current = self.current_call
        call = next(
            (
                c
                for c in [current, *self.calls]
                if isinstance(c, ConferenceCall) and c.state in LIVE
            ),
            None,
        )
        if call is None:
            self._fail(method, "3502", "there is no conference to end")
        try:
            await self._end_call(call, "terminate")
        except Exception as exc:
            if isinstance(exc, PhoneException):
                raise
            await self._forget(call, CallState.DISCONNECTED)
            self._fail(method, "3500", f"could not end the conference: {exc}")

    # the Phone's primitives, for conference calls ------------------------------------------
    async def _hold_call(self, call: Call, method: str, code: str, auto: bool) -> None:
        if not isinstance(call, ConferenceCall):
            await super()._hold_call(call, method, code, auto)
            return
        await self._conference_action(method, code, call, "initiate-hold")
        call.auto_held = auto
        call.set_state(CallState.HELD)
        self.publish(Event.CONFERENCE_HELD, call.event_data())

    async def _resume_call(self, call: Call, method: str, code: str) -> None:
        if not isinstance(call, ConferenceCall):
            await super()._resume_call(call, method, code)
            return
        await self._conference_action(method, code, call, "initiate-resume")
        call.auto_held = False
        call.set_state(CallState.CONNECTED)
        self.publish(Event.CONFERENCE_RESUMED, call.event_data())

    async def _conference_action(
        self, method: str, code: str, call: ConferenceCall, action: str
    ) -> None:
        """Hold or resume: a new offer (sendonly / sendrecv), the answer in mod-terminated."""
        headers = {"x-conference-action": action}
        direction = "sendonly" if action == "initiate-hold" else "sendrecv"
        path = self._conference_path(call)
        resp = await self._offer_change(
            method, code, call, direction, path, headers, "conferenceModifications"
        )
        await self._change_settled(method, code, call, resp.headers.get("x-modId"), MEDIA_TIMEOUT_S)

    async def _end_call(
        self, call: Call, reason: str | None, message: str = "Call terminated"
    ) -> None:
        if not isinstance(call, ConferenceCall):
            await super()._end_call(call, reason, message)
            return
        if call.state in ENDED:
            return
        call.set_state(CallState.DISCONNECTING)
        self.publish(Event.CONFERENCE_DISCONNECTING, call.event_data())
        if reason and call.id and self.session_path:
            try:
                await self.transport.request(
                    "DELETE", self._conference_path(call), headers={"x-delete-reason": reason}
                )
            except GatewayUnreachable:
                pass
        await self._forget(call, CallState.DISCONNECTED)
        message = "Conference ended" if call.hosting else "Call terminated"
        self.publish(Event.CONFERENCE_ENDED, call.event_data(message=message))

    # the event channel ---------------------------------------------------------------------
    async def _on_conference_event(self, obj: dict[str, Any]) -> None:
        """An event object of type 'conferences' from the event channel."""
        state, url = str(obj.get("state", "")), str(obj.get("resourceURL", ""))
        cid = url.rstrip("/").rsplit("/", 1)[-1]
        if state == "invitation-received":
            await self._conference_invitation(obj, url, cid)
            return
        call = self._conference_by_id(cid)
        if call is None:
            self._keep_early(cid, obj)
            return
        if state == "session-open":
            sdp = obj.get("sdp")
            if isinstance(sdp, str) and call.hosting and call.media is not None:
                await call.media.accept_answer(sdp)
            self._spawn(self._when_media_up(call, Event.CONFERENCE_CONNECTED))
        elif state == "mod-terminated" and not obj.get("participant"):
            self._mod_terminated(call, obj)  # this Phone's hold / resume
        elif state in ("session-modified", "mod-terminated") and call.hosting:
            self._participant_changed(call, state, obj)
        elif state == "session-terminated" and "reason" in obj:  # none: its own DELETE
            await self._conference_remote_ended(call, str(obj["reason"]))

    async def _conference_invitation(self, obj: dict[str, Any], url: str, cid: str) -> None:
        if self._pending_incoming() is not None or len(self._live_calls()) >= 2:
            self.publish(Event.NOTIFICATION, {"message": "a conference invitation was refused"})
            await self.transport.request("DELETE", url, headers={"x-delete-reason": "reject"})
            return
        call = self._new_conference("incoming", str(obj.get("from", "")), False)
        call.id = cid
        call.remote_sdp = obj.get("sdp")
        self.publish(
            Event.CONFERENCE_INVITATION_RECEIVED,
            {"from": call.peer, "mediaType": call.media_type, "codec": "", "timestamp": now_ms()},
        )

    def _participant_changed(self, call: ConferenceCall, state: str, obj: dict[str, Any]) -> None:
        uri = str(obj.get("participant", ""))
        reason = str(obj.get("reason", ""))
        status = str(obj.get("status", ""))
        # an invitation accepted (mod-terminated, success, its modId) or a call merged in
        joined = (state == "mod-terminated" and reason == "success") or (
            state == "session-modified" and status == "joined"
        )
        if not uri or (uri not in call.participants and not joined):
            return
        if joined:
            call.set_participant(uri, "joined", "accepted")
            self.publish(Event.CONFERENCE_INVITATION_ACCEPTED, call.event_data(invitee=uri))
        elif state == "session-modified" and status in ("removed", "left"):
            call.set_participant(uri, None, status)
            message = reason or "Removed from conference"
            self.publish(
                Event.CONFERENCE_PARTICIPANT_REMOVED,
                call.event_data(participant=uri, message=message),
            )
        elif state == "mod-terminated" and reason == "Call canceled":
            call.set_participant(uri, None, "canceled")
            self.publish(
                Event.CONFERENCE_PARTICIPANT_REMOVED,
                call.event_data(participant=uri, message=reason),
            )
        elif state == "mod-terminated":
            call.set_participant(uri, None, "rejected")
            self.publish(
                Event.CONFERENCE_INVITATION_REJECTED, call.event_data(invitee=uri, message=reason)
            )

    async def _conference_remote_ended(self, call: ConferenceCall, reason: str) -> None:
        call.end_reason = reason
        if call.state == CallState.CREATED and call.direction == "incoming":
            await self._forget(call, CallState.CANCELED)
            self.publish(Event.CONFERENCE_CANCELED, call.event_data(message=reason))
        elif call.state not in ENDED:
            await self._forget(call, CallState.DISCONNECTED)
            self.publish(Event.CONFERENCE_ENDED, call.event_data(message=reason))
