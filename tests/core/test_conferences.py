"""Conferences on fake endpoints and virtual time (the mixer ticks on the virtual clock): what
the host and each participant are told, in order, and who hears whom in the mix, as members
join, hold, resume, leave, and the host ends it. Milliseconds each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest

from ivrbot.core.call_state import MEDIA_TIMEOUT_S, LegState, Reason
from ivrbot.core.conference_legs import ConferenceLeg
from ivrbot.core.conferences import Conferences
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.media.frames import PTIME_S
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.clock import VirtualClock
from ivrbot.testing.fake_endpoints import FakeEndpoint, FakeEndpoints, events, login, told

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


@dataclass
class Core:
    clock: VirtualClock
    kit: FakeEndpoints
    sessions: SessionRegistry
    conferences: Conferences

    async def host(self, session: Session) -> ConferenceLeg:
        host = await self.conferences.create(session, "offer from the host")
        await self.clock.advance(0)
        return host

    async def invite(self, host: ConferenceLeg, invitee: Session) -> ConferenceLeg:
        await self.conferences.invite(host, f"sip:{invitee.user_id}")
        (leg,) = [c for c in self.conferences.legs.values() if c.session is invitee]
        return leg

    async def join(self, host: ConferenceLeg, invitee: Session) -> ConferenceLeg:
        leg = await self.invite(host, invitee)
        await self.conferences.answer(leg, "answer from the invitee")
        await self.clock.advance(0)
        return leg


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    clock = VirtualClock(T0)
    kit = FakeEndpoints(clock)
    sessions = SessionRegistry(3600, clock)
    core = Core(clock, kit, sessions, Conferences(sessions, kit, clock))
    yield core
    await core.conferences.close()


def endpoint(leg: ConferenceLeg) -> FakeEndpoint:
    assert isinstance(leg.leg, FakeEndpoint)
    return leg.leg


async def heard(listener: ConferenceLeg, speaker: ConferenceLeg, freq: float) -> float:
    """The level (dBFS) of ``freq`` ``listener`` hears over 0.3 s while ``speaker`` says it
    (20 ms at a time, as a peer sends), the mixer's first ticks left out."""
    tone, chunks = sine(freq, 0.3), []
    samples = int(48000 * PTIME_S)
    for start in range(0, tone.size, samples):
        endpoint(speaker).say(tone[start : start + samples])
        chunks.append(await endpoint(listener).hear(PTIME_S))
    return tone_dbfs(np.concatenate(chunks[5:]), freq)


async def test_an_invitee_joins_and_everyone_hears_the_others(core: Core) -> None:
    alice, bob, carol = (login(core.sessions, f"{n}@x") for n in ("alice", "bob", "carol"))
    host = await core.host(alice)
    assert told(alice, "conferences") == [("session-open", "")]
    b = await core.join(host, bob)
    c = await core.join(host, carol)
    assert told(bob, "conferences") == [("invitation-received", ""), ("session-open", "")]
    assert told(alice, "conferences") == [
        ("session-open", ""),
        ("mod-terminated", "success"),  # bob joined
        ("mod-terminated", "success"),  # carol joined
    ]
    assert [leg.state for leg in (host, b, c)] == [LegState.JOINED] * 3
    assert await heard(b, host, 1000) > -25  # bob hears alice
    assert await heard(c, host, 1000) > -25  # and so does carol
    assert await heard(host, b, 700) > -25  # alice hears bob
    assert await heard(b, b, 700) < -60  # nobody hears themself


async def test_a_member_on_hold_is_out_of_the_mix_until_it_resumes(core: Core) -> None:
    alice, bob, carol = (login(core.sessions, f"{n}@x") for n in ("alice", "bob", "carol"))
    host = await core.host(alice)
    b, c = await core.join(host, bob), await core.join(host, carol)
    await core.conferences.change_hold(b, True, "offer a=sendonly")
    assert told(bob, "conferences")[-1] == ("mod-terminated", "success")
    assert await heard(b, host, 1000) < -60  # bob hears nobody
    assert await heard(host, b, 700) < -60  # and nobody hears bob
    assert await heard(c, host, 1000) > -25  # the others carry on
    await core.conferences.change_hold(b, False, "offer a=sendrecv")
    assert await heard(b, host, 1000) > -25


async def test_a_participant_leaves_and_the_host_is_told(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    host = await core.host(alice)
    b = await core.join(host, bob)
    await core.conferences.leave(b)
    assert told(bob, "conferences")[-1] == ("session-terminated", "")  # its own DELETE
    assert told(alice, "conferences")[-1] == ("session-modified", Reason.HANGUP)
    assert events(alice)[-1]["status"] == "left"
    assert endpoint(b).closed and not endpoint(host).closed


async def test_the_host_ends_it_for_everyone(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    host = await core.host(alice)
    b = await core.join(host, bob)
    await core.clock.advance(42.0)
    await core.conferences.leave(host)
    assert told(alice, "conferences")[-1] == ("session-terminated", "")
    assert told(bob, "conferences")[-1] == ("session-terminated", Reason.ENDED)
    conf = host.conference
    assert conf.ended_at is not None and conf.ended_at - conf.started_at == 42.0
    assert not conf.mixer.running and endpoint(b).closed


async def test_an_invitee_whose_media_never_comes_up_fails_after_the_media_timeout(
    core: Core,
) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    core.kit.media_of["bob@x"] = "never"
    host = await core.host(alice)
    b = await core.join(host, bob)
    await core.clock.advance(MEDIA_TIMEOUT_S - 0.5)
    assert b.state is LegState.CONNECTING
    await core.clock.advance(0.5)
    assert told(bob, "conferences")[-1] == ("session-terminated", Reason.MEDIA_FAILED)
    assert told(alice, "conferences")[-1] == ("mod-terminated", Reason.MEDIA_FAILED)


async def test_every_invited_session_rejecting_is_busy(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    host = await core.host(alice)
    b = await core.invite(host, bob)
    await core.conferences.reject(b)
    assert told(alice, "conferences")[-1] == ("mod-terminated", Reason.BUSY)


async def test_a_member_whose_peer_is_lost_leaves(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    host = await core.host(alice)
    b = await core.join(host, bob)
    endpoint(b).lose()
    await core.clock.advance(0)
    assert told(bob, "conferences")[-1] == ("session-terminated", Reason.MEDIA_FAILED)
    assert told(alice, "conferences")[-1] == ("session-modified", Reason.MEDIA_FAILED)
    assert events(alice)[-1]["status"] == "left"
