"""The switch's typed events on a SIP party's session become SIP responses: 183 for early
media, 200 when answered, the failure code of an unanswered call's reason, BYE after an
answer (the same over real SIP peers: test_inbound.py, test_outbound.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ivrbot.core.call_state import Reason
from ivrbot.core.events import (
    EventPayload,
    Resource,
    SessionEvent,
    SessionModified,
    SessionOpen,
    SessionTerminated,
    Topic,
)
from ivrbot.core.sessions import SessionRegistry
from ivrbot.endpoints.local.local_link import LocalLink
from ivrbot.endpoints.sip.calls import CallRef
from ivrbot.endpoints.sip.connector import SipConnector, SipParty, follow
from ivrbot.endpoints.sip.media import CallAudio
from ivrbot.endpoints.sip.settings import parse_sip_settings

pytestmark = pytest.mark.unit  # async tests: a party that ends closes its media link on the loop
ANSWER = "v=0\r\n"


class Stack:
    """What the connector asks of PJSIP, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def answer(self, call: CallRef, code: int) -> None:
        self.sent.append(("answer", code))

    def hangup(self, call: CallRef, code: int) -> None:
        self.sent.append(("hangup", code))


def sip_call(outbound: bool = False) -> tuple[SipConnector, SipParty, Stack]:
    sessions = SessionRegistry(3600)
    gateway = SimpleNamespace(sessions=sessions, switch=SimpleNamespace())
    connector = SipConnector(gateway, parse_sip_settings({"port": 0}))  # type: ignore[arg-type]
    stack = Stack()
    connector.stack = stack  # type: ignore[assignment]
    session = sessions.create("anonymous@trunk.sip", "", None)
    call = CallRef(1, CallAudio())
    party = SipParty(call, "trunk", session, LocalLink("sip/trunk/test"), outbound=outbound)
    connector.parties[call.key] = party
    return connector, party, stack


def tell(connector: SipConnector, party: SipParty, *payloads: EventPayload) -> None:
    about = Resource(Topic.CALL, f"{party.session.path}/calls/c1")
    for payload in payloads:
        connector.on_switch_event(party, SessionEvent(about, payload))


async def test_early_media_rings_with_183_then_answers_200_and_hangs_up_with_bye() -> None:
    connector, party, stack = sip_call()
    tell(connector, party, SessionOpen(sdp=ANSWER, provisional=True), SessionModified())
    assert stack.sent == [("answer", 183), ("answer", 200)] and party.answered
    tell(connector, party, SessionTerminated(reason=Reason.HANGUP))
    assert stack.sent[-1] == ("hangup", 200) and connector.parties == {}


async def test_without_early_media_session_open_answers_200() -> None:
    connector, party, stack = sip_call()
    tell(connector, party, SessionOpen(sdp=ANSWER))
    assert stack.sent == [("answer", 200)]


@pytest.mark.parametrize(
    ("reason", "code"),
    [(Reason.BUSY, 486), (Reason.NOT_FOUND, 404), (Reason.NO_ANSWER, 480), ("Declined", 603)],
)
async def test_a_call_that_ends_unanswered_gets_its_reasons_failure_code(
    reason: str, code: int
) -> None:
    connector, party, stack = sip_call()
    tell(
        connector,
        party,
        SessionOpen(sdp=ANSWER, provisional=True),
        SessionTerminated(reason=reason),
    )
    assert stack.sent == [("answer", 183), ("hangup", code)] and not party.answered


async def test_a_dialled_out_call_the_caller_ends_is_cancelled_with_487() -> None:
    connector, party, stack = sip_call(outbound=True)
    tell(connector, party, SessionModified(), SessionTerminated())  # only the end counts
    assert stack.sent == [("hangup", 487)]


async def test_only_call_events_are_followed() -> None:
    sessions = SessionRegistry(3600)
    session = sessions.create("anonymous@trunk.sip", "", None)
    on_call = SessionEvent(Resource(Topic.CALL, f"{session.path}/calls/c1"), SessionOpen())
    on_conf = SessionEvent(
        Resource(Topic.CONFERENCE, f"{session.path}/conferences/f1"), SessionOpen()
    )
    for event in (on_conf, on_call):
        session.channel.publish(event)
    sessions.remove(session.id)  # the channel closes: follow returns
    seen: list[SessionEvent] = []
    await follow(session, seen.append)
    assert seen == [on_call]
