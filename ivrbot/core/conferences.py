"""Conferences: a host's leg and its participants' legs, all members of one mixer.

Every endpoint still talks only to the gateway (one peer connection per endpoint and
conference); the gateway's :class:`~ivrbot.core.mixer.Mixer` gives each member the sum of
the others. Hold takes a member out of the mix without touching its peer connection.

The events this module publishes on the event channels (ivrbot.core.events, about
``Topic.CONFERENCE``), as the wire shows them (ivrbot/wire/serialise.py): every object has
``type: 'conferences'``, ``state`` and ``resourceURL`` (the receiving session's own
conference resource, ``/RTC/v1/sessions/{sid}/conferences/{cid}``); the other keys are
listed.

To the host:

- ``session-open`` + ``sdp``: the gateway's answer to the host's offer (after the POST).
- ``mod-terminated`` + ``modId``, ``reason: 'success'``, ``participant``, ``status:
  'joined'``: an invitee joined and is in the mix (``modId`` is the ``x-modId`` of the PUT
  that invited it: the invitation was accepted).
- ``session-modified`` + ``modId``, ``participant``, ``status: 'joined'``: a call of the
  host's identity was merged into the conference (core/merge.py).
- ``mod-terminated`` + ``modId``, ``participant``, ``reason``: an invitation ended without a
  join. ``reason``: ``User busy`` (every invited session rejected), ``User not found`` (no
  session of that identity), ``Call canceled`` (the host removed the invitee first),
  ``Media failed``.
- ``session-modified`` + ``modId``, ``participant``, ``status: 'removed'``: the host's
  ``DELETE .../participants/{id}`` took effect (``modId`` as in that response's ``x-modId``).
- ``session-modified`` + ``modId``, ``participant``, ``status: 'left'``, ``reason``: a
  participant left by itself (``Call terminated``), logged out (``Session ended``) or lost
  its media (``Media failed``).
- ``session-terminated`` + ``reason``: the gateway ended the conference (``Media failed``,
  ``Session ended``, shutdown); without ``reason`` after the host's own DELETE.
- ``mod-terminated`` + ``modId``, ``reason: 'success'``, ``sdp`` (the answer to the offer in
  ``conferenceModifications.sdp``): after ``initiate-hold`` / ``initiate-resume`` (anyone).

To an invitee / participant:

- ``invitation-received`` + ``from`` (the host's URI), ``to`` (the invited URI), ``sdp``
  (the gateway's offer for this session's new leg).
- ``session-open``: the invitee's answer was taken and its media is up: it is in the mix.
- ``session-terminated`` + ``reason``: ``Removed from conference``, ``Conference ended``,
  ``Call canceled`` (invitation withdrawn, or the conference ended before an answer),
  ``Call answered elsewhere`` (another session of the identity joined), ``Media failed``;
  without ``reason`` after its own DELETE (leaving, declining).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.core.call_state import MEDIA_TIMEOUT_S, LegState, Reason
from ivrbot.core.conference_legs import (
    ConferenceError,
    ConferenceLeg,
    GatewayConference,
    LegMember,
    NotFound,
    Participant,
    valid_participant_id,
)
from ivrbot.core.endpoints import Endpoint, EndpointKinds, media_up
from ivrbot.core.events import (
    InvitationReceived,
    ModTerminated,
    SessionModified,
    SessionOpen,
    SessionTerminated,
)
from ivrbot.core.mixer import Mixer
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.media.recorder import Recorder, record_conference
from ivrbot.numbers import identity_candidates, identity_uri
from ivrbot.tasks import TaskSet

__all__ = [
    "ConferenceError",
    "ConferenceLeg",
    "Conferences",
    "GatewayConference",
    "LegState",
    "NotFound",
    "Participant",
    "Reason",
    "valid_participant_id",
]  # fmt: skip

log = logging.getLogger(__name__)

SWEEP_S = 1.0  # how often legs of sessions that are gone are looked for


class Conferences:
    """Every conference of the gateway, and each session's conference resources."""

    def __init__(
        self, sessions: SessionRegistry, endpoints: EndpointKinds, clock: Clock = REAL_CLOCK
    ) -> None:
        self.sessions, self.endpoints = sessions, endpoints
        self.clock = clock  # the mixers, media timeouts and the sweep run on it
        self.conferences: dict[str, GatewayConference] = {}
        self.legs: dict[str, ConferenceLeg] = {}  # by resource id (unique across sessions)
        self._tasks = TaskSet("conferences")
        self._sweeper: asyncio.Task[None] | None = None

    @staticmethod
    def _new_id() -> str:
        return secrets.token_hex(6)

    def leg_of(self, session: Session, cid: str) -> ConferenceLeg | None:
        """The conference resource ``cid`` of ``session`` (None for another session's)."""
        leg = self.legs.get(cid)
        return leg if leg is not None and leg.session.id == session.id else None

    def _register(self, cleg: ConferenceLeg) -> None:
        self.legs[cleg.id] = cleg

    # the host ------------------------------------------------------------------------------
    async def create(self, session: Session, sdp: str) -> ConferenceLeg:
        """Take the host's offer; the answer goes out as ``session-open`` on its channel."""
        mixer = Mixer(clock=self.clock)
        conf = GatewayConference(self._new_id(), identity_uri(session.user_id), mixer)
        conf.started_at = self.clock.time()
        conf.mixer.name = f"mixer/{conf.id}"
        leg = self.endpoints.for_session(f"{session.user_id}/conference/{conf.id}", session)
        host = ConferenceLeg(self._new_id(), session, leg, "host", conf)
        answer = await leg.answer_offer(sdp)
        conf.host = host
        self.conferences[conf.id] = conf
        self._register(host)
        conf.mixer.start()
        self._ensure_sweeper()
        log.info("conference %s created by %s", conf.id, session.user_id)
        self._tasks.spawn(self._open_host(host, answer))
        return host

    async def _open_host(self, host: ConferenceLeg, answer: str) -> None:
        host.publish(SessionOpen(sdp=answer))
        if not await self._connect(host):
            await self.end(host.conference, Reason.MEDIA_FAILED, notify_host=True)

    async def _connect(self, cleg: ConferenceLeg) -> bool:
        """Wait for the leg's media; then put it in the mix. False when it never came up."""
        ok = await media_up(cleg.leg, MEDIA_TIMEOUT_S, self.clock)
        if cleg.state is not LegState.CONNECTING:
            return False
        if not ok:
            return False
        cleg.member = LegMember(cleg.leg, cleg.conference.mixer, cleg.id)
        cleg.member.attach()
        cleg.set_state(LegState.JOINED)
        cleg.watcher = self._tasks.spawn(self._watch(cleg))
        return True

    async def _watch(self, cleg: ConferenceLeg) -> None:
        """A leg whose peer connection fails or closes leaves the conference."""
        await cleg.leg.failed.wait()
        if cleg.state is not LegState.ENDED:
            await self._lost(cleg, Reason.MEDIA_FAILED)

    async def _lost(self, cleg: ConferenceLeg, reason: Reason) -> None:
        """The gateway lost a leg (media failure, logout): tell whoever is left."""
        if cleg.state is LegState.ENDED:
            return
        if cleg.is_host:
            await self.end(cleg.conference, reason, notify_host=True)
        else:
            await self.leave(cleg, reason)

    async def invite(self, host: ConferenceLeg, uri: str) -> Participant:
        """Offer a new leg to every session of ``uri``'s identity (``x-state: add-pending``)."""
        conf = host.conference
        if not host.is_host:
            raise ConferenceError("add-participant", "only the conference's host adds participants")
        if conf.ended or host.state is LegState.ENDED:
            raise ConferenceError("add-participant", "the conference has ended")
        if uri in conf.participants:
            raise ConferenceError("add-participant", f"{uri} is already in the conference")
        participant = Participant(uri, self._new_id())
        conf.participants[uri] = participant
        present = {leg.session.id for leg in conf.legs()}
        targets = [
            s
            for uid in identity_candidates(uri)
            for s in self.sessions.of_user(uid)
            if s.id not in present
        ]
        for target in targets:
            leg = self.endpoints.for_session(f"{target.user_id}/conference/{conf.id}", target)
            cleg = ConferenceLeg(
                self._new_id(), target, leg, "participant", conf, participant, LegState.INVITED
            )
            try:
                offer = await leg.make_offer()
            except Exception:
                await leg.close()
                log.exception("conference %s: no offer for %s", conf.id, target.id)
                continue
            if conf.participants.get(uri) is not participant:  # removed, or the conference ended
                await leg.close()
                break
            participant.ringing.append(cleg)
            self._register(cleg)
            cleg.publish(InvitationReceived(from_uri=conf.host_uri, to_uri=uri, sdp=offer))
        if not participant.ringing and conf.participants.get(uri) is participant:
            self._tasks.spawn(self._invitation_failed(participant, conf, Reason.NOT_FOUND))
        log.info("conference %s: invited %s (%d sessions)", conf.id, uri, len(targets))
        return participant

    async def _invitation_failed(
        self, participant: Participant, conf: GatewayConference, reason: Reason
    ) -> None:
        if conf.participants.get(participant.uri) is not participant:
            return
        del conf.participants[participant.uri]
        for cleg in list(participant.ringing):
            await self._drop(cleg, Reason.CANCELED)
        if conf.host is not None and conf.host.state is not LegState.ENDED:
            conf.host.publish(
                ModTerminated(mod_id=participant.mod_id, reason=reason, participant=participant.uri)
            )

    async def remove(self, host: ConferenceLeg, uri: str) -> str:
        """The host removes a participant (or withdraws its invitation); returns the modId."""
        conf = host.conference
        if not host.is_host:
            raise ConferenceError("remove-participant", "only the conference's host removes")
        participant = conf.participants.get(uri)
        if participant is None:
            raise NotFound(f"{uri} is not a participant of this conference")
        if participant.leg is None:
            for cleg in list(participant.ringing):
                await self._drop(cleg, Reason.CANCELED)
            await self._invitation_failed(participant, conf, Reason.CANCELED)
            return participant.mod_id
        mod_id = self._new_id()
        del conf.participants[uri]
        await self._drop(participant.leg, Reason.REMOVED)
        host.publish(SessionModified(mod_id=mod_id, participant=uri, status="removed"))
        log.info("conference %s: removed %s", conf.id, uri)
        return mod_id

    # invitees ------------------------------------------------------------------------------
    async def answer(self, cleg: ConferenceLeg, sdp: str) -> None:
        """An invitee's answer: it joins the mix once its media is up."""
        participant = cleg.participant
        if (
            cleg.is_host
            or participant is None
            or cleg.state is not LegState.INVITED
            or participant.leg is not None
        ):
            raise ConferenceError("call-answer", f"the conference leg is {cleg.state}")
        await cleg.leg.accept_answer(sdp)
        participant.ringing.remove(cleg)
        participant.leg = cleg
        cleg.set_state(LegState.CONNECTING)
        for other in list(participant.ringing):
            await self._drop(other, Reason.ANSWERED_ELSEWHERE)
        self._tasks.spawn(self._join(cleg))

    async def _join(self, cleg: ConferenceLeg) -> None:
        participant, conf = cleg.participant, cleg.conference
        assert participant is not None
        if not await self._connect(cleg):
            if cleg.state is LegState.CONNECTING:
                await self._drop(cleg, Reason.MEDIA_FAILED)
                await self._invitation_failed(participant, conf, Reason.MEDIA_FAILED)
            return
        cleg.publish(SessionOpen())
        if conf.host is not None:  # the invitation (the host's x-modId) was accepted
            conf.host.publish(
                ModTerminated(
                    mod_id=participant.mod_id,
                    reason="success",
                    participant=participant.uri,
                    status="joined",
                )
            )
        log.info("conference %s: %s joined", conf.id, participant.uri)

    async def reject(self, cleg: ConferenceLeg) -> None:
        """One invited session declines; the host hears ``User busy`` once all have."""
        participant = cleg.participant
        if participant is None or cleg.state is not LegState.INVITED:
            raise ConferenceError("reject", f"the conference leg is {cleg.state}")
        await self._drop(cleg, None)
        if not participant.ringing and participant.leg is None:
            await self._invitation_failed(participant, cleg.conference, Reason.BUSY)

    # everyone ------------------------------------------------------------------------------
    def hold(self, cleg: ConferenceLeg) -> None:
        """Out of the mix: it hears nobody and nobody hears it; the others carry on."""
        if cleg.state is not LegState.JOINED or cleg.member is None:
            raise ConferenceError("initiate-hold", f"the conference leg is {cleg.state}")
        cleg.member.detach()
        cleg.set_state(LegState.HELD)

    def resume(self, cleg: ConferenceLeg) -> None:
        if cleg.state is not LegState.HELD or cleg.member is None:
            raise ConferenceError("initiate-resume", f"the conference leg is {cleg.state}")
        cleg.member.attach()
        cleg.set_state(LegState.JOINED)

    async def change_hold(self, cleg: ConferenceLeg, hold: bool, sdp: str | None) -> str:
        """``initiate-hold`` / ``initiate-resume`` with the client's new offer ``sdp``
        (``a=sendonly`` / ``a=sendrecv``): answered in ``mod-terminated`` (``success``)."""
        action = "initiate-hold" if hold else "initiate-resume"
        if cleg.state is not (LegState.JOINED if hold else LegState.HELD):
            raise ConferenceError(action, f"the conference leg is {cleg.state}")
        answer = await cleg.leg.renegotiate(sdp) if sdp is not None else None
        if hold:
            self.hold(cleg)
        else:
            self.resume(cleg)
        mod_id = self._new_id()
        cleg.publish(ModTerminated(mod_id=mod_id, reason="success", sdp=answer))
        return mod_id

    async def leave(self, cleg: ConferenceLeg, reason: Reason = Reason.HANGUP) -> None:
        """``DELETE`` of a conference resource: the host ends it, a participant leaves it."""
        if cleg.state is LegState.ENDED:
            return
        if cleg.is_host:  # the host is told too (session-terminated, no reason)
            await self.end(cleg.conference, Reason.ENDED, notify_host=False)
            return
        if cleg.state is LegState.INVITED:
            await self.reject(cleg)
            return
        notify = reason is not Reason.HANGUP  # a gateway-side loss is told to the leg too
        await self._drop(cleg, reason if notify else None)
        self._left(cleg, reason)

    def _left(self, cleg: ConferenceLeg, reason: str) -> None:
        """A participant's leg is out: the host is told (``session-modified``, ``left``)."""
        participant, conf = cleg.participant, cleg.conference
        assert participant is not None
        if conf.participants.get(participant.uri) is participant:
            del conf.participants[participant.uri]
            if conf.host is not None and conf.host.state is not LegState.ENDED:
                conf.host.publish(
                    SessionModified(
                        mod_id=participant.mod_id,
                        participant=participant.uri,
                        status="left",
                        reason=reason,
                    )
                )
        log.info("conference %s: %s left (%s)", conf.id, participant.uri, reason)

    # merged calls (core/merge.py) ------------------------------------------------------
    def adopt(
        self,
        host: ConferenceLeg,
        session: Session,
        leg: Endpoint,
        uri: str,
        on_end: Callable[[str], Awaitable[None]],
    ) -> ConferenceLeg:
        """Put a connected call's leg into ``host``'s mix as a participant, at once.

        The leg stays the call's: its session keeps the call resource (no conference
        resource of its own, no renegotiation). When the conference lets it go (the host
        removes it, the conference ends, its media fails) ``on_end(reason)`` ends its call.
        The participant id is ``uri``, or ``uri;<n>`` when ``uri`` is already present.
        """
        conf = host.conference
        if not host.is_host or conf.ended or host.state is LegState.ENDED:
            raise ConferenceError("initiate-call-merge", "the conference has ended")
        key, n = uri, 1
        while key in conf.participants:
            n += 1
            key = f"{uri};{n}"
        participant = Participant(key, self._new_id())
        cleg = ConferenceLeg(
            self._new_id(), session, leg, "participant", conf, participant, on_end=on_end
        )
        participant.leg = cleg
        conf.participants[key] = participant
        cleg.member = LegMember(leg, conf.mixer, cleg.id)
        cleg.member.attach()
        cleg.set_state(LegState.JOINED)
        cleg.watcher = self._tasks.spawn(self._watch(cleg))
        host.publish(SessionModified(mod_id=participant.mod_id, participant=key, status="joined"))
        log.info("conference %s: %s merged in", conf.id, key)
        return cleg

    async def release(self, cleg: ConferenceLeg, reason: str) -> None:
        """A merged call's party left its call (hang-up, logout): out of the mix."""
        if cleg.state is LegState.ENDED:
            return
        await self._drop(cleg, None)
        self._left(cleg, reason)

    async def end(self, conf: GatewayConference, reason: Reason, notify_host: bool) -> None:
        """End the conference for everyone."""
        if conf.ended:
            return
        conf.ended_at = self.clock.time()
        log.info("conference %s ended (%s)", conf.id, reason)
        await conf.mixer.stop()
        await self._stop_recorders(conf)
        for participant in list(conf.participants.values()):
            for cleg in list(participant.ringing):
                await self._drop(cleg, Reason.CANCELED)
            if participant.leg is not None:
                await self._drop(participant.leg, Reason.ENDED)
        conf.participants.clear()
        if conf.host is not None:
            await self._drop(conf.host, reason if notify_host else None)
        self.conferences.pop(conf.id, None)

    async def _drop(self, cleg: ConferenceLeg, reason: str | None) -> None:
        """Take one leg out: tell its session why (unless None) and close its media."""
        if cleg.state is LegState.ENDED:
            return
        cleg.set_state(LegState.ENDED)
        if cleg.on_end is None:  # no reason: the session's own DELETE (end, leave, reject)
            cleg.publish(SessionTerminated(reason=reason))
        if cleg.member is not None:
            cleg.member.detach()
        if cleg.participant is not None and cleg in cleg.participant.ringing:
            cleg.participant.ringing.remove(cleg)
        self.legs.pop(cleg.id, None)
        watcher = cleg.watcher
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
        if cleg.on_end is not None:  # a merged call's leg: its call ends it (and tells why)
            if reason is not None:
                await cleg.on_end(str(reason))
            return
        await cleg.leg.close()

    async def end_session(self, session: Session) -> None:
        """The session logged out: its conferences end (host) or lose it (participant)."""
        for cleg in [c for c in self.legs.values() if c.session.id == session.id]:
            await self._lost(cleg, Reason.LOGGED_OUT)

    def _ensure_sweeper(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = self._tasks.spawn(self._sweep())

    async def _sweep(self) -> None:
        """Legs of sessions that are gone (logout, expiry) leave their conferences."""
        while self.conferences:
            await self.clock.sleep(SWEEP_S)
            for cleg in list(self.legs.values()):
                if self.sessions.get(cleg.session.id) is None:
                    try:
                        await self._lost(cleg, Reason.LOGGED_OUT)
                    except Exception:
                        log.exception("conference sweep failed for %s", cleg.id)

    # recording -----------------------------------------------------------------------------
    def record(
        self, conf: GatewayConference, path: str | os.PathLike[str], rate: int | None = None
    ) -> Recorder:
        """Start recording the full mix (everyone) to ``path`` (.wav, .ogg or .opus).

        Stop it with ``await recorder.stop()``; it stops by itself when the conference ends."""
        if conf.ended:
            raise ConferenceError("record", "the conference has ended")
        recorder = record_conference(conf.mixer, path, rate=rate)
        conf.recorders.append(recorder)
        return recorder

    async def _stop_recorders(self, conf: GatewayConference) -> None:
        for recorder in conf.recorders:
            try:
                await recorder.stop()
            except OSError:
                log.exception("conference %s: recording %s failed", conf.id, recorder.path)

    # background work -----------------------------------------------------------------------
    async def close(self) -> None:
        for conf in list(self.conferences.values()):
            await self.end(conf, Reason.LOGGED_OUT, notify_host=True)
        self._tasks.cancel_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
