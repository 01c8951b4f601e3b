"""The Phone's conference methods (docs/spec/phone-api.md: startConference ...
getParticipants, and ``merge_call``, an ivrbot extension) and what the event channel says
about conferences. A conference is a :class:`~ivrbot.phone.call.ConferenceCall`: one media
session with the gateway, which mixes; ``hold()``, ``resume()`` and ``hangup()`` work on it
through the same steps as on a call (:mod:`ivrbot.phone.lines`): the host leaves the mix and
rejoins it, the participants keep hearing each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from aiortc import MediaStreamTrack

from ivrbot.errors import PhoneException
from ivrbot.events import (
    Event,
    IncomingCall,
    Invitation,
    InvitationSending,
    Notification,
    ParticipantRemoved,
)
from ivrbot.numbers import called_party_uri
from ivrbot.phone.call import LIVE, Call, CallState, ConferenceCall
from ivrbot.phone.calls import MEDIA_TYPES
from ivrbot.phone.lines import Lines


class PhoneConferences:
    """Hosting, joining and ending conferences; merging a call into one."""

    def __init__(self, lines: Lines, domain: str) -> None:
        self.lines = lines
        self.session = lines.session
        self.publisher = lines.publisher
        self.negotiation = lines.negotiation
        self.domain = domain
        lines.read_channel("conferences", self.on_channel_event)

    def _fail(self, method: str, code: str, message: str) -> NoReturn:
        self.publisher.fail(method, code, message)

    @staticmethod
    def _conference(call: Call | None) -> ConferenceCall | None:
        return call if isinstance(call, ConferenceCall) else None

    def _hosted(self, current_only: bool = False) -> ConferenceCall | None:
        lines = self.lines
        candidates = [lines.current] if current_only else [lines.current, *lines.calls]
        return next(
            (
                c
                for c in map(self._conference, candidates)
                if c is not None and c.hosting and c.state in LIVE
            ),
            None,
        )

    # the host ------------------------------------------------------------------------------
    async def start_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        media_type: str | None = "audio",
    ) -> ConferenceCall:
        """Open a conference hosted by this Phone (``media_type=None`` and nothing else: 3101)."""
        method, lines = "start_conference", self.lines
        self.session.check_online(method)
        if local_media is None and remote_media is None and media_type is None:
            self._fail(method, "3101", "start_conference needs options (media_type at least)")
        if media_type not in MEDIA_TYPES:
            self._fail(method, "3111", "media_type is required: 'audio' or 'video'")
        lines.check_media(method, ("3121", "3122"), local_media, remote_media)
        self.session.check_logged_in(method, "3131")
        if len(lines.live()) >= 2:
            self._fail(method, "3961", "there are already two calls")
        try:
            await lines.hold_current(method, "3100")
            call = lines.new(
                ConferenceCall, "outgoing", "", hosting=True, media_type=media_type,
                local_media=local_media, remote_media=remote_media,
            )  # fmt: skip
            body = {"conference": await self.negotiation.offer(call)}
        except Exception as exc:
            if isinstance(exc, PhoneException):
                raise
            self._fail(method, "3100", f"could not prepare the conference's media: {exc}")
        lines.foreground = call
        path = f"{self.session.session_path}/conferences"
        resp = await self.session.request(method, "3100", "POST", path, body)
        if resp.status != 201:
            await lines.forget(call, CallState.DISCONNECTED)
            self.session.api_fail(method, "3100", resp)
        call.id = resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
        call.set_state(CallState.CONNECTING)
        self.publisher.publish(Event.CONFERENCE_CONNECTING, call.event_data())
        await lines.replay_early(call)
        return call

    async def add_participant(self, id: str | None = None) -> None:
        """Invite ``id`` (a number or user@domain, as for dial) to the hosted conference."""
        method = "add_participant"
        self.session.check_online(method)
        if not isinstance(id, str) or not id.strip():
            self._fail(method, "3611", "the participant must be a non-empty string")
        if "sip:" in id or "tel:" in id:
            self._fail(method, "3612", "the participant must not contain sip: or tel:")
        if id.count("@") > 1:
            self._fail(method, "3613", "the participant has more than one @")
        self.session.check_logged_in(method, "3621")
        call = self._hosted(current_only=True)
        if call is None:
            self._fail(method, "3631", "the current call is not a conference this Phone hosts")
        uri = called_party_uri(id.strip(), self.domain)
        if uri is None:
            self._fail(method, "3611", f"{id!r} is not a callable number or address")
        if uri in call.participants:
            self._fail(method, "3641", f"{uri} is already a participant")
        self.publisher.publish(Event.CONFERENCE_INVITATION_SENDING, InvitationSending(uri))
        call.set_participant(uri, "invited", "pending")
        path = f"{self.lines.path(call)}/participants/{uri}"
        try:
            resp = await self.session.request(method, "3600", "PUT", path, {})
            if not resp.ok:
                self.session.api_fail(method, "3600", resp)
        except Exception:
            if call.participants.get(uri, {}).get("status") == "invited":
                call.set_participant(uri, None, None)
                call.invitations.pop(uri, None)
            raise
        sent = call.event_data(Invitation, invitee=uri, mod_id=resp.headers.get("x-modId", ""))
        self.publisher.publish(Event.CONFERENCE_INVITATION_SENT, sent)

    async def remove_participant(self, id: str | None = None) -> None:
        """Remove a participant (or withdraw its invitation); ``id`` as given or its URI."""
        method = "remove_participant"
        self.session.check_online(method)
        if not isinstance(id, str) or not id.strip():
            self._fail(method, "3711", "remove_participant needs the participant's id")
        self.session.check_logged_in(method, "3721")
        call = self._hosted()
        if call is None:
            self._fail(method, "3731", "this Phone hosts no conference")
        key = id.strip()
        uri = key if key.startswith(("sip:", "tel:")) else called_party_uri(key, self.domain)
        if uri is None or uri not in call.participants:
            self._fail(method, "3700", f"{id!r} is not a participant of the conference")
        path = f"{self.lines.path(call)}/participants/{uri}"
        resp = await self.session.request(method, "3700", "DELETE", path)
        if not resp.ok:
            self.session.api_fail(method, "3700", resp)

    def get_participants(self) -> dict[str, dict[str, str]]:
        """``{uri: {participant, status}}`` of the hosted conference (invited and joined)."""
        self.session.check_logged_in("get_participants", "3401")
        call = self._hosted()
        if call is None:
            self._fail("get_participants", "3402", "this Phone hosts no conference")
        return {k: dict(v) for k, v in call.participants.items()}

    async def merge_call(self, conference_id: str, stay: bool = False) -> None:
        """Put the current call's far party into a conference (see Phone.merge_call)."""
        method = "merge_call"
        self.session.check_online(method)
        self.session.check_logged_in(method, "3861")
        call = self.lines.current
        if call is None or call.state != CallState.CONNECTED:
            self._fail(method, "3862", "merge_call needs a connected current call")
        if call.breed == "conference":
            self._fail(method, "3863", "the current call is a conference already")
        if not isinstance(conference_id, str) or not conference_id.strip():
            self._fail(method, "3864", "merge_call needs the conference's id")
        headers = {
            "x-conferenceId": conference_id.strip(),
            "x-merge-mode": "stay" if stay else "leave",
        }
        await self.lines.action(method, "3860", call, "initiate-call-merge", headers=headers)

    # invitees ------------------------------------------------------------------------------
    async def join_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Callable[..., Any] | None = None,
        action: str | None = None,
    ) -> ConferenceCall:
        """Join the conference this Phone is invited to (``action`` as for answer)."""
        method, lines = "join_conference", self.lines
        self.session.check_online(method)
        lines.check_media(method, ("3211", "3212"), local_media, remote_media)
        self.session.check_logged_in(method, "3221")
        call = self._conference(lines.pending_incoming())
        if call is None:
            self._fail(method, "3231", "there is no conference invitation to join")
        others = [c for c in lines.live() if c is not call]
        if action not in (None, "hold", "end") or (others and action is None):
            self._fail(method, "3241", "action must be 'hold' or 'end' (needed with a call)")
        if others and action == "end":
            for other in others:
                await lines.end(other, "terminate")
        elif others:
            await lines.hold_current(method, "3200")
        if local_media is not None:
            call.local_media = local_media
        if remote_media is not None:
            call.remote_media = remote_media
        self.publisher.publish(Event.CONFERENCE_JOINING, IncomingCall(call.peer, call.media_type))
        try:
            body = {call.kind.modifications: await self.negotiation.answer(call)}
        except Exception as exc:
            await lines.forget(call, CallState.DISCONNECTED)
            self._fail(method, "3200", f"the invitation's media cannot be used: {exc}")
        headers = {"x-conference-action": "call-answer"}
        resp = await self.session.request(method, "3200", "PUT", lines.path(call), body, headers)
        if not resp.ok:
            await lines.forget(call, CallState.DISCONNECTED)
            self.session.api_fail(method, "3200", resp)
        lines.foreground = call
        call.set_state(CallState.CONNECTING)
        self.publisher.publish(Event.CONFERENCE_CONNECTING, call.event_data())
        return call

    async def reject_conference(self) -> None:
        method = "reject_conference"
        self.session.check_online(method)
        self.session.check_logged_in(method, "3301")
        call = self._conference(self.lines.pending_incoming())
        if call is None:
            self._fail(method, "3302", "there is no conference invitation to reject")
        resp = await self.session.request(
            method, "3300", "DELETE", self.lines.path(call), headers={"x-delete-reason": "reject"}
        )
        if not resp.ok:
            self.session.api_fail(method, "3300", resp)
        await self.lines.forget(call, CallState.REJECTED)
        rejected = call.event_data(Invitation, invitee=self.session.user_id or "")
        self.publisher.publish(Event.CONFERENCE_INVITATION_REJECTED, rejected)

    # everyone ------------------------------------------------------------------------------
    async def end_conference(self) -> None:
        """The host ends the conference for everyone; a participant leaves it."""
        method, lines = "end_conference", self.lines
        self.session.check_online(method)
        self.session.check_logged_in(method, "3501")
        candidates = map(self._conference, [lines.current, *lines.calls])
        call = next((c for c in candidates if c is not None and c.state in LIVE), None)
        if call is None:
            self._fail(method, "3502", "there is no conference to end")
        try:
            await lines.end(call, "terminate")
        except Exception as exc:
            if isinstance(exc, PhoneException):
                raise
            await lines.forget(call, CallState.DISCONNECTED)
            self._fail(method, "3500", f"could not end the conference: {exc}")

    # the event channel ---------------------------------------------------------------------
    async def on_channel_event(self, obj: dict[str, Any]) -> None:
        """An event object of type 'conferences' from the event channel."""
        state, url = str(obj.get("state", "")), str(obj.get("resourceURL", ""))
        cid = url.rstrip("/").rsplit("/", 1)[-1]
        if state == "invitation-received":
            await self._invitation(obj, url, cid)
            return
        call = self._conference(self.lines.by_id(cid, "conference"))
        if call is None:
            self.lines.keep_early(cid, obj)
            return
        if state == "session-open":
            await self.negotiation.take_answer(call, obj)
            self.publisher.spawn(self.lines.when_media_up(call))
        elif state == "mod-terminated" and not obj.get("participant"):
            self.lines.mod_terminated(call, obj)  # this Phone's hold / resume
        elif state in ("session-modified", "mod-terminated") and call.hosting:
            self._participant_changed(call, state, obj)
        elif state == "session-terminated" and "reason" in obj:  # none: its own DELETE
            await self.lines.remote_ended(call, str(obj["reason"]))

    async def _invitation(self, obj: dict[str, Any], url: str, cid: str) -> None:
        lines = self.lines
        if lines.pending_incoming() is not None or len(lines.live()) >= 2:
            notice = Notification("a conference invitation was refused")
            self.publisher.publish(Event.NOTIFICATION, notice)
            await self.session.transport.request(
                "DELETE", url, headers={"x-delete-reason": "reject"}
            )
            return
        call = lines.new(ConferenceCall, "incoming", str(obj.get("from", "")), hosting=False)
        call.id = cid
        self.negotiation.take_offer(call, obj)
        invited = IncomingCall(call.peer, call.media_type)
        self.publisher.publish(Event.CONFERENCE_INVITATION_RECEIVED, invited)

    def _participant_changed(self, call: ConferenceCall, state: str, obj: dict[str, Any]) -> None:
        uri = str(obj.get("participant", ""))
        reason = str(obj.get("reason", ""))
        status = str(obj.get("status", ""))
        publish = self.publisher.publish
        # an invitation accepted (mod-terminated, success, its modId) or a call merged in
        joined = (state == "mod-terminated" and reason == "success") or (
            state == "session-modified" and status == "joined"
        )
        if not uri or (uri not in call.participants and not joined):
            return
        if joined:
            call.set_participant(uri, "joined", "accepted")
            publish(Event.CONFERENCE_INVITATION_ACCEPTED, call.event_data(Invitation, invitee=uri))
        elif state == "session-modified" and status in ("removed", "left"):
            call.set_participant(uri, None, status)
            removed = call.event_data(
                ParticipantRemoved, participant=uri, message=reason or "Removed from conference"
            )
            publish(Event.CONFERENCE_PARTICIPANT_REMOVED, removed)
        elif state == "mod-terminated" and reason == "Call canceled":
            call.set_participant(uri, None, "canceled")
            removed = call.event_data(ParticipantRemoved, participant=uri, message=reason)
            publish(Event.CONFERENCE_PARTICIPANT_REMOVED, removed)
        elif state == "mod-terminated":
            call.set_participant(uri, None, "rejected")
            rejected = call.event_data(Invitation, invitee=uri, message=reason)
            publish(Event.CONFERENCE_INVITATION_REJECTED, rejected)
