"""The Python Phone: the client API of docs/spec/phone-api.md in snake_case, over the wire
API. :class:`Phone` is the one public face; the work is done by its parts, each built here
and given what it needs:

- :class:`~ivrbot.phone.publisher.Publisher`: subscriptions, typed payloads, the ``error``
  event;
- :class:`~ivrbot.phone.session.Session`: login, logout, keeping the session alive, the event
  channel, requests through the :class:`~ivrbot.phone.transport.Transport`;
- :class:`~ivrbot.phone.negotiation.Negotiation`: every SDP offer and answer, ICE settings;
- :class:`~ivrbot.phone.lines.Lines`: the calls and the steps every call goes through;
- :class:`~ivrbot.phone.calls.Calls`, :class:`~ivrbot.phone.modifications.Modifications`,
  :class:`~ivrbot.phone.conferences.Conferences`: the spec's methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCIceServer

from ivrbot import __version__, numbers
from ivrbot.errors import PhoneError
from ivrbot.events import Event, Payload
from ivrbot.media.hold import HOLD_AUDIO
from ivrbot.phone.call import Call, ConferenceCall
from ivrbot.phone.calls import Calls
from ivrbot.phone.conferences import PhoneConferences
from ivrbot.phone.lines import Lines
from ivrbot.phone.modifications import Modifications
from ivrbot.phone.negotiation import Negotiation
from ivrbot.phone.publisher import Handler, Publisher
from ivrbot.phone.session import PhoneSession
from ivrbot.phone.transport import Transport
from ivrbot.phone.transport_remote import RemoteTransport

Sink = Callable[..., Any]


class Phone:
    """One logged-in endpoint. Methods publish the spec's events; handlers subscribe with ``on``.

    Caller mistakes publish ``error`` (with a :class:`~ivrbot.errors.PhoneError`) and then raise
    :class:`~ivrbot.errors.PhoneException`, so a script that awaits a method sees the failure.
    """

    def __init__(
        self,
        gateway_url: str,
        name: str = "phone",
        domain: str = "ivrbot.local",
        transport: Transport | None = None,
        hold_audio: str | None = None,
    ) -> None:
        """``transport``: how requests and events reach the gateway (default: HTTP and a
        WebSocket to ``gateway_url``; a bot in the gateway's own process passes a
        :class:`~ivrbot.phone.transport_local.LocalTransport`: its calls' media are then
        frames in process; tests of the Phone's logic pass a scripted one).
        ``hold_audio``: what the gateway sends this Phone while the far end holds a call,
        'music' or 'silence' (None: the gateway's setting); a Phone that says is also told
        when the far end holds and resumes (``call:remote-held`` / ``call:remote-resumed``).
        Bots say 'silence': music on hold is not the caller."""
        if hold_audio not in (None, *HOLD_AUDIO):
            raise ValueError(f"hold_audio must be one of {HOLD_AUDIO}, not {hold_audio!r}")
        self.name = name
        self.domain = domain
        self._publisher = Publisher(name)
        transport = transport or RemoteTransport(gateway_url)
        self._session = PhoneSession(self._publisher, transport, hold_audio)
        self._negotiation = Negotiation(self._publisher, transport.links)
        self._lines = Lines(self, self._session, self._publisher, self._negotiation)
        self._session.keeper = self._lines
        self._modifications = Modifications(self._lines)
        self._calls = Calls(self._lines, self._modifications, domain)
        self._conferences = PhoneConferences(self._lines, domain)

    # state -----------------------------------------------------------------------------------
    @property
    def transport(self) -> Transport:
        return self._session.transport

    @property
    def in_process(self) -> bool:
        """In the gateway's process: calls' media are frames in process, not WebRTC."""
        return self.transport.links is not None

    @property
    def user_id(self) -> str | None:
        return self._session.user_id

    @property
    def session_path(self) -> str | None:
        return self._session.session_path

    @property
    def session_id(self) -> str | None:
        return self._session.session_id

    @property
    def logged_in(self) -> bool:
        return self._session.logged_in

    @property
    def online(self) -> bool:
        return self._session.online

    @property
    def gateway_grace_s(self) -> float:
        """Calls end ('Gateway unreachable') once the gateway has not answered this long."""
        return self._session.gateway_grace_s

    @gateway_grace_s.setter
    def gateway_grace_s(self, seconds: float) -> None:
        self._session.gateway_grace_s = seconds

    @property
    def ice_servers(self) -> list[RTCIceServer]:
        return self._negotiation.ice_servers

    @property
    def ice_transport(self) -> str:
        return self._negotiation.ice_transport

    @property
    def calls(self) -> list[Call]:
        return self._lines.calls

    @property
    def current_call(self) -> Call | None:
        """The call in front (None when it has ended)."""
        return self._lines.current

    @property
    def background_call(self) -> Call | None:
        """The other established call, waiting behind the current one."""
        return self._lines.background

    # events ----------------------------------------------------------------------------------
    def on(self, event: str, handler: Handler) -> None:
        """Subscribe ``handler`` (sync or async) to an event named as in the spec."""
        self._publisher.on(event, handler)

    def publish(self, event: Event, payload: Payload | PhoneError | None = None) -> None:
        self._publisher.publish(event, payload)

    # session ---------------------------------------------------------------------------------
    async def login(
        self, token: str | None = None, e911_id: str | None = None, user_id: str | None = None
    ) -> None:
        await self._session.login(token, e911_id, user_id)

    async def logout(self) -> None:
        """End every call, then the session."""
        await self._session.logout()

    async def associate_e911_id(self, e911_id: Any = None) -> None:
        """Re-associate the session with another emergency address (address-updated)."""
        await self._session.associate_e911_id(e911_id)

    async def close(self) -> None:
        """Log out if logged in, and release everything (safe to call twice)."""
        await self._session.close()

    def set_ice_servers(self, servers: Any) -> None:
        """STUN/TURN servers for the next calls (URL strings or {'urls', ...})."""
        self._negotiation.set_ice_servers(servers)

    def set_ice_transport(self, policy: Any) -> None:
        """'all' (default), 'relay' (TURN only) or 'none' for the next calls."""
        self._negotiation.set_ice_transport(policy)

    # calls -----------------------------------------------------------------------------------
    async def dial(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Sink | None = None,
    ) -> Call:
        return await self._calls.dial(destination, media_type, local_media, remote_media)

    async def add_call(
        self,
        destination: str | None = None,
        media_type: str = "audio",
        local_media: MediaStreamTrack | None = None,
        remote_media: Any = None,
    ) -> Call:
        """Hold the current call (resumed automatically later) and dial a second one."""
        return await self._calls.add_call(destination, media_type, local_media, remote_media)

    async def answer(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Sink | None = None,
        action: str | None = None,
    ) -> Call:
        return await self._calls.answer(local_media, remote_media, action)

    async def hangup(self) -> None:
        await self._calls.hangup()

    async def cancel(self) -> None:
        await self._calls.cancel()

    async def reject(self) -> None:
        await self._calls.reject()

    async def mute(self) -> None:
        await self._calls.mute()

    async def unmute(self) -> None:
        await self._calls.unmute()

    async def hold(self) -> None:
        await self._calls.hold()

    async def resume(self) -> None:
        await self._calls.resume()

    async def move(self) -> None:
        await self._calls.move()

    async def switch_call(self) -> None:
        """Swap the foreground and background calls (hold one, resume the other)."""
        await self._calls.switch_call()

    async def transfer(self) -> None:
        """Join the far parties of the two calls together; this Phone leaves both."""
        await self._calls.transfer()

    async def send_dtmf_tone(self, input: str | None = None, gap: int = 70) -> None:
        """Send keypad tones on the current call (RFC 4733), publishing dtmf:tone-sent each."""
        await self._calls.send_dtmf_tone(input, gap)

    async def upgrade(self) -> None:
        await self._modifications.upgrade()

    async def downgrade(self) -> None:
        await self._modifications.downgrade()

    async def accept_modification(self) -> None:
        await self._modifications.accept_modification()

    async def reject_modification(self) -> None:
        await self._modifications.reject_modification()

    def get_calls(self) -> list[dict[str, object]]:
        return [c.to_info() for c in self._lines.calls]

    def is_call_in_progress(self) -> bool:
        return self._lines.current is not None

    def get_media_type(self) -> str | None:
        call = self._lines.current
        return call.media_type if call else None

    @staticmethod
    def get_version() -> str:
        return __version__

    # conferences -----------------------------------------------------------------------------
    async def start_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Sink | None = None,
        media_type: str | None = "audio",
    ) -> ConferenceCall:
        """Open a conference hosted by this Phone (``media_type=None`` and nothing else: 3101)."""
        return await self._conferences.start_conference(local_media, remote_media, media_type)

    async def add_participant(self, id: str | None = None) -> None:
        """Invite ``id`` (a number or user@domain, as for dial) to the hosted conference."""
        await self._conferences.add_participant(id)

    async def remove_participant(self, id: str | None = None) -> None:
        """Remove a participant (or withdraw its invitation); ``id`` as given or its URI."""
        await self._conferences.remove_participant(id)

    def get_participants(self) -> dict[str, dict[str, str]]:
        """``{uri: {participant, status}}`` of the hosted conference (invited and joined)."""
        return self._conferences.get_participants()

    async def join_conference(
        self,
        local_media: MediaStreamTrack | None = None,
        remote_media: Sink | None = None,
        action: str | None = None,
    ) -> ConferenceCall:
        """Join the conference this Phone is invited to (``action`` as for answer)."""
        return await self._conferences.join_conference(local_media, remote_media, action)

    async def reject_conference(self) -> None:
        await self._conferences.reject_conference()

    async def end_conference(self) -> None:
        """The host ends the conference for everyone; a participant leaves it."""
        await self._conferences.end_conference()

    async def merge_call(self, conference_id: str, stay: bool = False) -> None:
        """Put the current call's far party into a conference (an ivrbot extension).

        ``conference_id`` is the id of a conference hosted by a session of this Phone's
        identity (``ConferenceCall.id``). The far party is in the mix at once, on its call as
        it is. ``stay=False``: this Phone's call ends (``call:disconnected``, message ``Call
        merged into a conference``); ``stay=True``: this Phone is in the mix too, on the same
        call. Codes (Python Phone only): 0002, not logged in 3861, no connected call 3862, the
        current call is a conference 3863, no conference id 3864, gateway refusal 3860.
        """
        await self._conferences.merge_call(conference_id, stay)

    # phone-number utilities (spec: cleanPhoneNumber, formatNumber, getCallerInfo) -----------
    def clean_phone_number(self, number: str) -> str:
        """'+1 (123) 123 1234' -> '11231231234'; bad input publishes error 3810."""
        try:
            return numbers.clean_phone_number(number)
        except (TypeError, ValueError) as exc:
            self._publisher.fail("clean_phone_number", "3810", str(exc))

    def format_number(self, number: str) -> str:
        """'18002253339' -> '+1 (800) 225-3339'; bad input publishes error 3820."""
        try:
            return numbers.format_number(number)
        except (TypeError, ValueError) as exc:
            self._publisher.fail("format_number", "3820", str(exc))

    def get_caller_info(self, uri: str | None) -> dict[str, str] | None:
        """'sip:+1111@host' -> {protocol, port, callerId, domain}; None when there is no URI;
        bad input publishes error 3830."""
        try:
            return numbers.get_caller_info(uri)
        except (TypeError, ValueError) as exc:
            self._publisher.fail("get_caller_info", "3830", str(exc))
