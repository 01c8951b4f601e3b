"""Calls out through a SIP trunk: a number nobody in the gateway answers, and that a trunk
dials (its prefixes), is taken by a SIP session of the gateway; when the switch rings that
session, the connector sends the INVITE, and the SIP answer (or failure) answers (or ends)
the switch's call: busy 486, rejected 603, no answer 480/487, unreachable (no response,
5xx) become the call record's outcome."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import pjsua2 as pj

from ivrbot.core.events import InvitationReceived, SessionEvent
from ivrbot.core.handle import CallHandle
from ivrbot.core.sessions import Session
from ivrbot.core.switch import SwitchCall
from ivrbot.endpoints.sip.connector import SipParty, follow
from ivrbot.endpoints.sip.settings import Trunk

if TYPE_CHECKING:
    from ivrbot.endpoints.sip.connector import SipConnector

log = logging.getLogger(__name__)


def dialled_number(called_party: str) -> str:
    """'tel:+15550002000' -> '5550002000' (10-digit national numbers keep no 1)."""
    if not called_party.startswith("tel:"):
        return ""
    digits = re.sub(r"\D", "", called_party[4:])
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


class Dialout:
    """The switch's ``route_out``: the trunk that dials a number, as an acceptor."""

    def __init__(self, connector: SipConnector) -> None:
        self.connector = connector

    def route(self, called_party: str) -> _TrunkCall | None:
        number = dialled_number(called_party)
        trunk = self.connector.settings.trunk_dialling(number) if number else None
        return _TrunkCall(self.connector, trunk, number) if trunk is not None else None


class _TrunkCall:
    """One outbound call's acceptor: a session of the gateway standing for the SIP callee."""

    def __init__(self, connector: SipConnector, trunk: Trunk, number: str) -> None:
        self.connector = connector
        self.trunk = trunk
        self.number = number
        self.party: SipParty | None = None

    async def admit(self, call: SwitchCall) -> Session | None:
        sessions = self.connector.gateway.sessions
        session = sessions.create(f"{self.number}@{self.trunk.name}.sip", "", None, local=True)
        session.expires_at = float("inf")  # it lasts as long as the SIP call, however long
        self.connector.spawn(self._run(session))
        return session

    def released(self, session: Session) -> None:
        self.connector.gateway.sessions.remove(session.id)

    async def _run(self, session: Session) -> None:
        await follow(session, lambda event: self._on_event(session, event))

    def _on_event(self, session: Session, event: SessionEvent) -> None:
        if self.party is not None:
            self.connector.on_switch_event(self.party, event)
        elif isinstance(event.payload, InvitationReceived):
            leg = session.calls.get(event.about.id)
            if leg is not None:
                self.connector.spawn(self._invite(session, leg))

    async def _invite(self, session: Session, leg: CallHandle) -> None:
        uri = self.trunk.dial_uri(self.number)
        stack = self.connector.stack
        call = await stack.new_call(f"trunk:{self.trunk.name}")
        party = SipParty(call, self.trunk.name, session, leg=leg, outbound=True)
        self.party = party
        self.connector.parties[call.key] = party  # before the INVITE: its events find it
        self.connector.attach(party, leg)
        log.info("SIP call to %s through trunk %s", uri, self.trunk.name)
        try:
            await stack.invite(call, uri)
        except pj.Error as exc:
            log.warning("SIP call to %s failed: %s", uri, exc.info().strip())
            await self.connector.end_switch_call(party, "Unreachable")
