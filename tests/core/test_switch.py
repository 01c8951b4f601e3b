"""The switch on fake endpoints and virtual time: what each session is told (the states and
reasons, in order) and who hears whom, for ringing, answering, the ring and media timeouts,
hold and resume, transfer, cancel, reject and hang-up. No SDP, no sockets: milliseconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest

from ivrbot.core.call_state import MEDIA_TIMEOUT_S, CallPhase, Reason
from ivrbot.core.sessions import Session, SessionRegistry
from ivrbot.core.switch import CallLeg, Switch, SwitchCall
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.clock import VirtualClock
from ivrbot.testing.fake_endpoints import FakeEndpoint, FakeEndpoints, login, told

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0  # the virtual clock's wall time at zero
RING_TIMEOUT_S = 60.0


@dataclass
class Core:
    clock: VirtualClock
    kit: FakeEndpoints
    sessions: SessionRegistry
    switch: Switch
    # (phase, started_at, answered_at, ended_at, reason) each time a call record is written
    records: list[tuple[CallPhase, float, float | None, float | None, str]] = field(
        default_factory=list
    )

    def on_call_changed(self, call: SwitchCall) -> None:
        self.records.append(
            (call.state, call.started_at, call.answered_at, call.ended_at, call.reason)
        )

    async def call(self, caller: Session, callee: Session) -> tuple[CallLeg, CallLeg]:
        """``caller`` calls ``callee``'s identity; returns (caller's leg, callee's ringing leg)."""
        leg = await self.switch.place(caller, f"sip:{callee.user_id}", "offer from the caller")
        await self.clock.advance(0)  # the ringing runs
        return leg, ringing(callee)

    async def connected(self, caller: Session, callee: Session) -> tuple[CallLeg, CallLeg]:
        a, b = await self.call(caller, callee)
        await self.switch.answer(b, "answer from the callee")
        await self.clock.advance(0)
        assert a.call.state is CallPhase.CONNECTED
        return a, b


@pytest.fixture
async def core() -> AsyncIterator[Core]:
    clock = VirtualClock(T0)
    kit = FakeEndpoints(clock)
    sessions = SessionRegistry(3600, clock)
    core = Core(
        clock, kit, sessions, Switch(sessions, kit, ring_timeout_s=RING_TIMEOUT_S, clock=clock)
    )
    core.switch.on_call_changed = core.on_call_changed
    yield core
    await core.switch.close()


def ringing(session: Session) -> CallLeg:
    calls = session.calls.values()
    (leg,) = [leg for leg in calls if isinstance(leg, CallLeg) and leg in leg.call.ringing]
    return leg


def endpoint(leg: CallLeg) -> FakeEndpoint:
    assert isinstance(leg.leg, FakeEndpoint)
    return leg.leg


async def hears_tone(listener: CallLeg, speaker: CallLeg, freq: float) -> float:
    """The level (dBFS) of ``freq`` that ``listener`` hears while ``speaker`` says it."""
    endpoint(speaker).say(sine(freq, 0.1))
    return tone_dbfs(await endpoint(listener).hear(0.1), freq)


def loud(pcm: np.ndarray) -> bool:
    return bool(np.abs(pcm.astype(np.int32)).max() > 300)


# ringing and answering ---------------------------------------------------------------------
async def test_a_call_rings_then_connects_and_the_parties_hear_each_other(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, b = await core.call(alice, bob)
    assert told(alice) == [("session-open", "")]  # early media: the answer, provisional
    assert told(bob) == [("invitation-received", "")]
    assert loud(await endpoint(a).hear(2.0))  # ringback
    await core.clock.advance(3.0)
    await core.switch.answer(b, "answer from bob")
    await core.clock.advance(0)
    assert told(alice) == [("session-open", ""), ("session-modified", "")]
    assert told(bob) == [("invitation-received", ""), ("session-open", "")]
    assert await hears_tone(b, a, 1000) > -20  # bob hears alice
    assert await hears_tone(a, b, 700) > -20  # alice hears bob
    endpoint(a).press("5")
    await core.clock.advance(0)
    assert endpoint(b).keys_sent == ["5"]
    phase, started, answered, ended, _ = core.records[-1]
    assert (phase, started, answered, ended) == (CallPhase.CONNECTED, T0, T0 + 5.0, None)


async def test_an_unanswered_call_ends_no_answer_after_exactly_the_ring_timeout(
    core: Core,
) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, _ = await core.call(alice, bob)
    await core.clock.advance(RING_TIMEOUT_S - 0.5)
    assert a.call.state is CallPhase.RINGING and told(alice) == [("session-open", "")]
    await core.clock.advance(0.5)
    assert told(alice)[-1] == ("session-terminated", Reason.NO_ANSWER)
    assert told(bob)[-1] == ("session-terminated", Reason.NO_ANSWER)
    phase, started, answered, ended, reason = core.records[-1]
    assert (phase, answered, reason) == (CallPhase.ENDED, None, Reason.NO_ANSWER)
    assert ended is not None and ended - started == RING_TIMEOUT_S
    assert endpoint(a).closed


async def test_media_that_never_comes_up_ends_the_call_after_the_media_timeout(
    core: Core,
) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    core.kit.media_of["bob@x"] = "never"
    a, b = await core.call(alice, bob)
    await core.switch.answer(b, "answer from bob")
    await core.clock.advance(MEDIA_TIMEOUT_S - 0.5)
    assert a.call.state is CallPhase.CONNECTING
    await core.clock.advance(0.5)
    assert told(alice) == [("session-open", ""), ("session-terminated", Reason.MEDIA_FAILED)]
    assert told(bob) == [("invitation-received", ""), ("session-terminated", Reason.MEDIA_FAILED)]
    _, started, answered, ended, _ = core.records[-1]
    assert answered is None and ended == started + MEDIA_TIMEOUT_S


async def test_media_that_fails_ends_the_call_at_once(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    core.kit.media_of["bob@x"] = "fail"
    a, b = await core.call(alice, bob)
    await core.switch.answer(b, "answer from bob")
    await core.clock.advance(0)
    assert told(alice)[-1] == ("session-terminated", Reason.MEDIA_FAILED)
    assert a.call.ended_at == T0


async def test_the_first_session_to_answer_takes_the_call(core: Core) -> None:
    alice = login(core.sessions, "alice@x")
    desk, mobile = login(core.sessions, "bob@x"), login(core.sessions, "bob@x")
    a, _ = await core.call(alice, desk)
    await core.switch.answer(ringing(mobile), "answer from the mobile")
    await core.clock.advance(0)
    assert told(desk) == [
        ("invitation-received", ""),
        ("session-terminated", Reason.ANSWERED_ELSEWHERE),
    ]
    assert told(mobile)[-1] == ("session-open", "")
    assert a.call.state is CallPhase.CONNECTED


async def test_nobody_to_ring_ends_the_call_not_found(core: Core) -> None:
    alice = login(core.sessions, "alice@x")
    a = await core.switch.place(alice, "sip:nobody@x", "offer")
    await core.clock.advance(0)
    assert told(alice) == [("session-terminated", Reason.NOT_FOUND)]
    assert a.call.state is CallPhase.ENDED


# cancel, reject, hang up -----------------------------------------------------------------
async def test_the_caller_cancels_a_ringing_call(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, _ = await core.call(alice, bob)
    await core.clock.advance(4.0)
    await core.switch.end(a, Reason.CANCELED)
    assert told(alice) == [("session-open", ""), ("session-terminated", "")]  # its own
    assert told(bob) == [("invitation-received", ""), ("session-terminated", Reason.CANCELED)]
    assert core.records[-1][3] == T0 + 4.0
    await core.clock.advance(RING_TIMEOUT_S)  # the ring timer went with the call
    assert len(told(alice)) == 2


async def test_the_callee_rejects(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    _, b = await core.call(alice, bob)
    await core.switch.end(b, Reason.BUSY)
    assert told(bob) == [("invitation-received", ""), ("session-terminated", "")]
    assert told(alice) == [("session-open", ""), ("session-terminated", Reason.BUSY)]


@pytest.mark.parametrize("by", ["caller", "callee"])
async def test_either_side_hangs_up(core: Core, by: str) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, b = await core.connected(alice, bob)
    await core.clock.advance(30.0)
    ender, other = (a, b) if by == "caller" else (b, a)
    await core.switch.end(ender, Reason.HANGUP)
    assert told(ender.session)[-1] == ("session-terminated", "")
    assert told(other.session)[-1] == ("session-terminated", Reason.HANGUP)
    assert a.call.ended_by == by
    _, _, answered, ended, _ = core.records[-1]
    assert answered is not None and ended == answered + 30.0
    assert endpoint(a).closed and endpoint(b).closed


async def test_a_party_whose_peer_is_lost_ends_the_call(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, b = await core.connected(alice, bob)
    endpoint(b).lose()
    await core.clock.advance(0)
    assert told(alice)[-1] == ("session-terminated", Reason.LOST)
    assert a.call.state is CallPhase.ENDED


# hold and resume -------------------------------------------------------------------------
async def test_hold_gives_the_other_party_music_and_resume_bridges_again(core: Core) -> None:
    alice, bob = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, b = await core.connected(alice, bob)
    await core.switch.hold(a, "offer a=sendonly")
    assert told(alice)[-1] == ("mod-terminated", "success")
    assert await hears_tone(b, a, 1000) < -60  # bob no longer hears alice ...
    assert loud(await endpoint(b).hear(1.0))  # ... but music on hold
    await core.switch.resume(a, "offer a=sendrecv")
    assert told(alice)[-1] == ("mod-terminated", "success")
    assert await hears_tone(b, a, 1000) > -20


async def test_a_session_that_chose_silence_is_told_of_the_far_hold(core: Core) -> None:
    alice, bot = login(core.sessions, "alice@x"), login(core.sessions, "bot@x")
    bot.hold_audio = "silence"  # what a bot says at login
    a, b = await core.connected(alice, bot)
    await core.switch.hold(a, "offer a=sendonly")
    assert told(bot)[-1] == ("session-modified", "held")
    assert not loud(await endpoint(b).hear(1.0))
    await core.switch.resume(a, "offer a=sendrecv")
    assert told(bot)[-1] == ("session-modified", "resumed")


# transfer --------------------------------------------------------------------------------
async def test_a_transfer_joins_the_two_far_parties(core: Core) -> None:
    alice, bob, carol = (login(core.sessions, f"{n}@x") for n in ("alice", "bob", "carol"))
    to_bob, from_alice = await core.connected(alice, bob)
    to_carol, carol_side = await core.connected(alice, carol)
    await core.clock.advance(7.0)
    await core.switch.transfer(to_bob, to_carol.id)
    assert told(bob)[-1] == ("session-modified", "transferred")
    assert told(carol)[-1] == ("session-modified", "transferred")
    assert told(alice)[-4:] == [
        ("transfer-initiated", ""),
        ("transfer-terminated", "success"),
        ("session-terminated", Reason.TRANSFERRED),
        ("session-terminated", Reason.TRANSFERRED),
    ]
    assert await hears_tone(carol_side, from_alice, 900) > -20  # bob and carol hear each other
    assert await hears_tone(from_alice, carol_side, 600) > -20
    joined = from_alice.call
    assert joined is carol_side.call and joined.state is CallPhase.CONNECTED
    assert joined.started_at == joined.answered_at == T0 + 7.0


# move ------------------------------------------------------------------------------------
async def test_a_move_hands_the_call_to_the_users_other_session(core: Core) -> None:
    alice, desk = login(core.sessions, "alice@x"), login(core.sessions, "bob@x")
    a, on_desk = await core.connected(alice, desk)
    mobile = login(core.sessions, "bob@x")
    await core.switch.move(on_desk)
    await core.clock.advance(0)
    assert told(mobile) == [("invitation-received", "")]
    await core.switch.answer(ringing(mobile), "answer from the mobile")
    await core.clock.advance(0)
    assert told(mobile)[-1] == ("session-open", "")
    assert told(desk)[-2:] == [("move-terminated", "moved"), ("session-terminated", Reason.MOVED)]
    (on_mobile,) = core.switch.legs_of(mobile)
    assert await hears_tone(on_mobile, a, 1000) > -20  # alice is heard on the mobile
    assert a.call.state is CallPhase.CONNECTED and told(alice)[-1] == ("session-modified", "")
