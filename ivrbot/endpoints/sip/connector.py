"""The SIP connector: SIP calls as parties of the gateway's switch.

An INVITE from an allow-listed trunk address becomes a call placed by a SIP session of the
gateway to the called number, with in-process media (a LocalLink whose far end is the SIP
call's PCM port): routing to the flow's bot, transfer, conference and call records work as
for any other caller. The switch's events on that session drive the SIP side (183 with early
media, 200, final failure codes, BYE); the SIP side's hang-up ends the switch's call.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivrbot.config import Settings
from ivrbot.core.actions import CallAction
from ivrbot.core.call_state import Reason
from ivrbot.core.events import (
    SessionEvent,
    SessionModified,
    SessionOpen,
    SessionTerminated,
    Topic,
)
from ivrbot.core.handle import CallHandle
from ivrbot.core.sessions import Session
from ivrbot.endpoints.local.local_leg import LocalLeg
from ivrbot.endpoints.local.local_link import LocalLink, local_sdp
from ivrbot.endpoints.sip.calls import CallRef, Invite, uri_user
from ivrbot.endpoints.sip.media import HeardTrack, SaySink
from ivrbot.endpoints.sip.settings import SipSettings, load_sip_settings
from ivrbot.endpoints.sip.stack import SipStack
from ivrbot.metrics import watch_sip
from ivrbot.tasks import TaskSet
from ivrbot.wire.gateway import Gateway
from ivrbot.wire.server import GatewayServer

log = logging.getLogger(__name__)

# the switch's reason for ending a call that was never answered -> the SIP final response
FAILURE_CODES = {
    Reason.BUSY: 486,
    Reason.NOT_FOUND: 404,
    Reason.NO_ANSWER: 480,
    Reason.MEDIA_FAILED: 488,
    Reason.LOGGED_OUT: 480,
}


def called_uri(number: str, domain: str) -> str:
    """The switch's URI for a called number or name: '5550001000' -> 'tel:+15550001000',
    'alice' -> 'sip:alice@DOMAIN' (a user of the gateway)."""
    if re.fullmatch(r"\+?[\d\s().-]*\d[\d\s().-]*", number.strip()):
        digits = re.sub(r"\D", "", number)
        return f"tel:+1{digits}" if len(digits) == 10 else f"tel:+{digits}"
    return f"sip:{number}" if "@" in number else f"sip:{number}@{domain}"


@dataclass(eq=False)
class SipParty:
    """One SIP call on the event loop's side: its switch session, media link and state."""

    call: CallRef
    trunk: str
    session: Session
    link: LocalLink | None = None  # the switch's media link, once it has the call
    leg: CallHandle | None = None  # its call in the switch
    outbound: bool = False  # the gateway dialled out through a trunk
    answered: bool = False  # 200 OK sent (inbound) or received (outbound)
    ended: bool = False
    transport: str = "udp"  # of its signalling
    srtp: bool = False  # its audio is SRTP (known once media is up)
    started_at: float = field(default_factory=time.time)


@dataclass
class Registration:
    account: str
    code: int = 0
    reason: str = "not yet registered"
    active: bool = False


class SipConnector:
    """PJSIP's calls, bridged into ``gateway``'s switch (see the module's docstring)."""

    def __init__(self, gateway: Gateway, settings: SipSettings) -> None:
        self.gateway = gateway
        self.settings = settings
        self.stack = SipStack(settings, self)
        self.parties: dict[int, SipParty] = {}  # by id(SipCall)
        self.registrations = {name: Registration(name) for name in settings.accounts}
        self.rejected = 0  # INVITEs turned away (address not allowed, ...)
        self._unwatch: Callable[[], None] | None = None
        self.on_change: Callable[[], None] = lambda: None  # a registration changed (dashboard)
        self._tasks = TaskSet("sip")
        from ivrbot.endpoints.sip.dialout import Dialout  # they use this module's parts
        from ivrbot.endpoints.sip.refer import Referrer

        self.dialout = Dialout(self)
        gateway.switch.route_out = self.dialout.route
        self.referrer = Referrer(self)
        gateway.switch.transfer_out = self.referrer.transfer_out

    @property
    def port(self) -> int:
        return self.stack.port

    async def start(self) -> None:
        await self.stack.start()
        self._unwatch = watch_sip(self.status)  # in /metrics
        ports = ", ".join(f"{name.upper()} {port}" for name, port in self.stack.ports.items())
        log.info("SIP listening on %s: %s", self.settings.host, ports)

    async def stop(self) -> None:
        for party in list(self.parties.values()):
            await self.end_switch_call(party, Reason.HANGUP)
            self._hangup(party, 503)
        self._tasks.cancel_all()
        await self.stack.stop()
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    # events from the stack ----------------------------------------------------------------
    def incoming(self, call: CallRef, invite: Invite) -> None:
        registered = self.settings.accounts.get(invite.account)
        trunk = self.settings.trunk_for(invite.source)
        source, called = invite.source, invite.called
        if registered is not None and registered.registrar_host == source:
            via, number = f"account {invite.account}", registered.number or called
            srtp = registered.srtp
        elif trunk is not None:
            via, number, srtp = trunk.name, trunk.route(called), trunk.srtp
        else:
            self._reject(call, 403, f"from {source} to {called}",
                         "the address is not in any trunk's allow list")  # fmt: skip
            return
        if srtp == "mandatory" and not invite.srtp:
            self._reject(call, 488, f"from {source} ({via}) to {called}",
                         f"{via} has srtp = \"mandatory\" and the offer has no SRTP "
                         "(a=crypto)")  # fmt: skip
            return
        if srtp == "off" and invite.srtp:
            self._reject(call, 488, f"from {source} ({via}) to {called}",
                         f"{via} has srtp = \"off\" and the offer has SRTP")  # fmt: skip
            return
        user = uri_user(invite.caller) or "anonymous"
        session = self.gateway.sessions.create(
            f"{user}@{via.replace(' ', '-')}.sip", "", None, local=True
        )  # its media are the PCM port, in this process
        session.expires_at = float("inf")  # it lasts as long as the SIP call, however long
        party = SipParty(call, via, session, transport=invite.transport)
        self.parties[call.key] = party
        log.info("SIP call from %s (%s, %s, %s) to %s", user, source, via,
                 invite.transport.upper(), number)  # fmt: skip
        self.stack.answer(call, 180)
        self._tasks.spawn(self._place(party, called_uri(number, self.gateway.settings.domain)))

    async def _place(self, party: SipParty, to_uri: str) -> None:
        try:
            party.leg = await self.gateway.switch.place(party.session, to_uri, local_sdp())
        except Exception:
            log.exception("SIP call to %s could not be placed", to_uri)
            self._finish(party, 500)
            return
        self.attach(party, party.leg)
        await self._follow(party)

    def attach(self, party: SipParty, call: CallHandle) -> None:
        """Plug the SIP call's PCM port into the far end of ``call``'s media link (the
        switch's side of the SIP session's call, made in this process)."""
        endpoint = call.endpoint
        assert isinstance(endpoint, LocalLeg), "a SIP session's calls have in-process media"
        party.link = endpoint.link
        audio = party.call.audio
        party.link.attach(
            "endpoint", HeardTrack(audio), SaySink(audio), self._key_sender(party.call)
        )

    async def _follow(self, party: SipParty) -> None:
        """Turn the switch's events on the party's session into SIP responses."""
        await follow(party.session, lambda event: self.on_switch_event(party, event))

    def on_switch_event(self, party: SipParty, event: SessionEvent) -> None:
        if party.outbound:
            if isinstance(event.payload, SessionTerminated):  # the caller hung up or cancelled
                self._finish(party, 487 if not party.answered else 200)
            return
        match event.payload:
            case SessionOpen(provisional=True):
                self.stack.answer(party.call, 183)  # early media: ringback in-band
            case SessionOpen() | SessionModified() if not party.answered:
                party.answered = True
                self.stack.answer(party.call, 200)
            case SessionTerminated(reason=ended):
                reason = str(ended or Reason.HANGUP)
                code = 200 if party.answered else FAILURE_CODES.get(reason, 603)  # type: ignore[call-overload]
                log.info("SIP call of %s ended by the gateway: %s", party.session.user_id, reason)
                self._finish(party, code)

    def call_state(self, call: CallRef, state: str, code: int, reason: str) -> None:
        party = self.parties.get(call.key)
        if party is None:
            return
        if party.outbound and state == "confirmed" and not party.answered and party.leg:
            party.answered = True
            log.info("SIP call to %s answered", party.session.user_id)
            self._tasks.spawn(party.leg.act(CallAction("call-answer", sdp=local_sdp())))
        if state != "disconnected":
            return
        self.referrer.ended(call)
        log.info("SIP call of %s ended by SIP: %d %s", party.session.user_id, code, reason)
        if party.answered:
            why = str(Reason.HANGUP)
        elif party.outbound:
            why = failure_reason(code)
        else:
            why = Reason.CANCELED
        self._tasks.spawn(self.end_switch_call(party, why))

    async def end_switch_call(
        self, party: SipParty, reason: str, sip_code: int | None = None
    ) -> None:
        """End the party's switch call (``reason``), then the party (``sip_code``: hang the
        SIP call up with it; None: SIP has ended it already)."""
        leg = party.leg
        if leg is not None and not party.ended:
            party.ended = True
            await leg.end(reason)
        self._finish(party, sip_code)

    def media_up(self, call: CallRef, srtp: bool) -> None:
        party = self.parties.get(call.key)
        if party is not None:
            party.srtp = srtp
            log.info("SIP call of %s: audio up (%s)", party.session.user_id,
                     "SRTP" if srtp else "RTP")  # fmt: skip

    def transfer_status(self, call: CallRef, code: int, reason: str, final: bool) -> None:
        self.referrer.status(call, code, reason, final)

    def digit(self, call: CallRef, digit: str) -> None:
        party = self.parties.get(call.key)
        if party is not None and party.link is not None:
            party.link.key("endpoint", digit)

    def held(self, call: CallRef, held: bool) -> None:
        """The SIP side holds (re-INVITE a=sendonly / inactive) or resumes: the switch's
        hold, so the far party hears music on hold."""
        party = self.parties.get(call.key)
        if party is None or party.leg is None or not party.answered:
            return
        log.info("SIP call of %s %s", party.session.user_id, "held" if held else "resumed")
        action = "initiate-call-hold" if held else "initiate-call-resume"
        self._tasks.spawn(party.leg.act(CallAction(action)))

    def registration(self, account: str, code: int, reason: str, active: bool) -> None:
        reg = self.registrations.setdefault(account, Registration(account))
        reg.code, reg.reason, reg.active = code, reason, active
        self.on_change()
        if active:
            log.info("SIP account %s registered (%d %s)", account, code, reason)
        else:
            log.warning("SIP account %s is not registered: %d %s", account, code, reason)

    # helpers ------------------------------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        self._tasks.spawn(coro)

    def _key_sender(self, call: CallRef) -> Any:
        def send(tone: str) -> None:
            self.stack.send_dtmf(call, tone)

        return send

    def _reject(self, call: CallRef, code: int, what: str, why: str) -> None:
        self.rejected += 1
        log.warning("SIP INVITE %s rejected (%d): %s", what, code, why)
        self.stack.hangup(call, code)

    def _hangup(self, party: SipParty, code: int) -> None:
        self.stack.hangup(party.call, code)

    def _finish(self, party: SipParty, code: int | None) -> None:
        """The party is over: SIP hang-up (``code``; None: SIP ended it), media and session."""
        party.ended = True
        if self.parties.pop(party.call.key, None) is None:
            return
        if code is not None:
            self._hangup(party, code)
        if party.link is not None:
            party.link.close()
        self.gateway.sessions.remove(party.session.id)

    def status(self) -> dict[str, Any]:
        """Registrations, trunks and active SIP calls (``ivrbot sip status``, /metrics)."""
        now = time.time()
        return {
            "port": self.stack.port,
            "transports": dict(self.stack.ports),
            "registrations": [vars(r) for r in self.registrations.values()],
            "trunks": [
                {"name": t.name, "allow": list(t.allow), "uri": t.uri}
                for t in self.settings.trunks.values()
            ],
            "calls": [
                {
                    "trunk": p.trunk,
                    "party": p.session.user_id,
                    "answered": p.answered,
                    "transport": p.transport,
                    "srtp": p.srtp,
                    "seconds": round(now - p.started_at, 1),
                }
                for p in self.parties.values()
            ],
            "rejected": self.rejected,
        }


def failure_reason(code: int) -> str:
    """The switch's reason (and so the call record's outcome) for an INVITE that failed."""
    if code == 486 or code == 600:
        return Reason.BUSY
    if code == 603:
        return "Call rejected"
    if code == 404 or code == 604:
        return Reason.NOT_FOUND
    if code in (480, 487):
        return Reason.NO_ANSWER
    return "Unreachable"  # 408 (no response), 503, transport errors


async def follow(session: Session, handle: Callable[[SessionEvent], None]) -> None:
    """Hand every call event of ``session``'s channel to ``handle`` until it closes."""
    while True:
        batch = await session.channel.next_batch(None)
        if batch is None:
            return
        for event in batch:
            if event.about.topic is Topic.CALL:
                handle(event)


def sip_connector(server: GatewayServer, settings: Settings) -> SipConnector:
    """The connector for ``server`` from the SIP configuration file of ``settings``, its
    status route added (before the server starts); SipConfigError names what to fix."""
    from ivrbot.endpoints.sip.routes import add_routes

    connector = SipConnector(
        server.gateway, load_sip_settings(settings.sip_config, settings.sip_overrides())
    )
    add_routes(server.app, connector)
    return connector
