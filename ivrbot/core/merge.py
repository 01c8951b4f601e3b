"""Merging a call into a conference: an ivrbot extension of the wire API.

``PUT /sessions/{sid}/calls/{cid}`` with ``x-calls-action: initiate-call-merge``,
``x-conferenceId: <conference id>`` (a conference hosted by a session of the same identity)
and ``x-merge-mode: leave | stay`` (default ``leave``) -> 204.

The far party of the call goes into the conference's mix at once, on the leg it already
has: its session keeps its call (nothing to answer, no renegotiation) and hears the
conference from then on. With ``leave`` the requesting session's own leg ends
(``session-terminated``, reason ``Call merged into a conference``); with ``stay`` it joins
the mix too and keeps its call, and the far party's keypad events (RFC 4733) still reach
it (the mix carries audio only). The host is told ``session-modified`` / ``joined`` for each
party, and ``left`` when one hangs up. Hold and resume of a merged call take that party out
of the mix and back; a host removing the participant, or ending the conference, ends the
party's call (``Removed from conference`` / ``Conference ended``).

This is how a bot bridges callers into a conference room (the flow's Conference step): the
historical API could only invite identities, which rings their phones a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivrbot.core.call_state import CallPhase, CallStateError, PartyState, Reason
from ivrbot.core.conferences import ConferenceError, ConferenceLeg, Conferences, LegState
from ivrbot.core.endpoints import Endpoint
from ivrbot.core.switch_call import CallLeg
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.core.switch import Switch

MERGE_MODES = ("leave", "stay")


class NoSuchConference(LookupError):
    """A merge names a conference this identity does not host (the wire API's 404)."""


class CallMembership:
    """A merged call party's place in the mix (the switch's Membership)."""

    def __init__(self, conferences: Conferences, cleg: ConferenceLeg) -> None:
        self.conferences = conferences
        self.cleg = cleg
        self._keys = TaskSet("merged call keys")

    def send_keys_to(self, other: Endpoint) -> None:
        """Keypad events (RFC 4733) from this party go to ``other`` (the mixer carries
        audio only): a bot that stays on the call still gets the caller's keys."""

        def forward(tone: str) -> None:
            self._keys.spawn(other.send_dtmf(tone))

        self.cleg.leg.on_dtmf = forward

    def hold(self) -> None:
        try:
            self.conferences.hold(self.cleg)
        except ConferenceError:
            raise CallStateError("initiate-call-hold (held)", CallPhase.CONNECTED) from None

    def resume(self) -> None:
        try:
            self.conferences.resume(self.cleg)
        except ConferenceError:
            raise CallStateError("initiate-call-resume (not held)", CallPhase.CONNECTED) from None

    async def leave(self, reason: str) -> None:
        self._keys.cancel_all()
        await self.conferences.release(self.cleg, reason)


async def merge_call(switch: Switch, leg: CallLeg, conference_id: str, stay: bool) -> None:
    """Put ``leg``'s far party (and ``leg`` itself with ``stay``) into the conference."""
    conferences = switch.conferences
    host = conferences.legs.get(conference_id) if conferences is not None else None
    if host is None or not host.is_host or host.session.user_id != leg.session.user_id:
        raise NoSuchConference(f"no conference {conference_id} hosted by this identity")
    assert conferences is not None
    call = switch.require(leg, "initiate-call-merge", frozenset({CallPhase.CONNECTED}))
    if host.conference.ended or host.state is LegState.ENDED:
        raise CallStateError("initiate-call-merge (the conference has ended)", call.state)
    movers = [call.other(leg), leg] if stay else [call.other(leg)]
    call.set_state(CallPhase.MERGED)
    switch.apply_media(call)  # unbridged: from now on the mixer carries their audio
    for party in movers:
        party.set_state(PartyState.ACTIVE)  # in the mix

        async def on_end(reason: str, party: CallLeg = party) -> None:
            await switch.end(party, reason, by_gateway=True)

        cleg = conferences.adopt(host, party.session, party.leg, party.uri, on_end)
        party.membership = CallMembership(conferences, cleg)
    if stay:
        far = call.other(leg).membership
        assert isinstance(far, CallMembership)
        far.send_keys_to(leg.leg)
    else:
        await switch.part(leg, Reason.MERGED, notify=True)
