"""Two real Phones call each other through the gateway: who hears whom, DTMF, teardown."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import numpy as np
import pytest

from ivrbot.credentials import Credentials
from ivrbot.endpoints.webrtc import rfc4733
from ivrbot.media.frames import pcm_from_frame
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport import request_token
from ivrbot.phone.transport_local import LocalTransport
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.in_process import InProcessWire
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.e2e


class Party:
    """A Phone that records what it hears and every event it gets; with ``local`` (the
    gateway's routes in this process) it is attached inside the gateway, as a bot is."""

    def __init__(self, url: str, name: str, local: InProcessWire | None = None) -> None:
        self.local = local
        transport = LocalTransport(local) if local is not None else None
        self.phone = Phone(url, name=name, transport=transport)
        self.heard: list[np.ndarray] = []
        self.events: dict[str, list[Any]] = {}
        for event in (
            "call:incoming", "call:connected", "call:disconnected", "call:canceled",
            "call:rejected", "dtmf:tone-received", "session:ready", "error", "call:held",
            "call:resumed", "call:moved", "call:transferred", "session:call-switched",
            "call:ringback-provided", "call:media-modification", "call:modification-in-progress",
        ):  # fmt: skip
            self.phone.on(event, self._record(event))

    def _record(self, event: str) -> Any:
        def handler(payload: Any) -> None:
            self.events.setdefault(event, []).append(payload)

        return handler

    def hear(self, frame: av.AudioFrame) -> None:
        self.heard.append(pcm_from_frame(frame))

    async def wait(self, event: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.events.get(event, [])) < count:
                await asyncio.sleep(0.02)
        return self.events[event]

    def recent_audio(self, seconds: float) -> np.ndarray:
        frames = int(seconds / 0.02)
        return np.concatenate(self.heard[-frames:]) if self.heard else np.zeros(0, np.int16)


async def login(party: Party, url: str, scope: str, user_id: str) -> None:
    token = await request_token(party.phone.transport, scope, Credentials.from_env())
    await party.phone.login(token=token, user_id=user_id)


async def connect(alice: Party, bot: Party) -> tuple[Call, Call]:
    out = await alice.phone.dial("5550001000", remote_media=alice.hear)
    await bot.wait("call:incoming")
    inc = await bot.phone.answer(remote_media=bot.hear)
    await alice.wait("call:connected")
    await bot.wait("call:connected")
    return out, inc


async def test_each_party_hears_only_the_other(pair: Any, gateway: GatewayServer) -> None:
    alice, bot = pair
    out, inc = await connect(alice, bot)
    assert bot.events["call:incoming"][0]["from"] == "sip:alice@ivrbot.local"
    out.play(sine(440, 3.0))
    inc.play(sine(1000, 3.0))
    await asyncio.sleep(1.5)
    a, b = alice.recent_audio(1.0), bot.recent_audio(1.0)
    assert tone_dbfs(a, 1000) > -25, "alice does not hear the bot's 1000 Hz tone"
    assert tone_dbfs(a, 440) < -50, "alice hears her own 440 Hz tone"
    assert tone_dbfs(b, 440) > -25, "the bot does not hear alice's 440 Hz tone"
    assert tone_dbfs(b, 1000) < -50, "the bot hears its own 1000 Hz tone"
    assert len(gateway.gateway.switch.calls) == 1


async def test_hangup_tears_down_both_legs(pair: Any, gateway: GatewayServer) -> None:
    alice, bot = pair
    out, inc = await connect(alice, bot)
    await alice.phone.hangup()
    ended = await bot.wait("call:disconnected")
    assert ended[0].get("message") == "Call terminated"
    assert out.pc.connectionState == "closed"
    assert inc.media is not None and inc.media.closed
    assert gateway.gateway.switch.calls == {}
    assert gateway.gateway.switch.calls == {}
    assert all(not s.calls for s in gateway.gateway.sessions)
    await alice.phone.logout()
    await bot.phone.logout()
    assert len(gateway.gateway.sessions) == 0


async def test_an_ended_call_leaves_no_task_and_no_receiver_state(
    pair: Any, gateway: GatewayServer
) -> None:
    alice, bot = pair
    receivers = rfc4733.tracked()[0]
    _, inc = await connect(alice, bot)
    link = getattr(inc.media, "link", None)  # in process: the gateway's link, by object
    assert (link is not None) == bot.phone.in_process
    # two Phones' receivers and two legs'; a bot in process has neither (local media)
    assert rfc4733.tracked()[0] == receivers + (2 if bot.phone.in_process else 4)
    await alice.phone.send_dtmf_tone(input="1")
    await bot.wait("dtmf:tone-received")
    await alice.phone.hangup()
    await bot.wait("call:disconnected")
    await asyncio.sleep(0.1)  # the bot's Phone closes its media after the event
    # the ring timeout's timer went with the call (it held the call and its legs 60 s)
    assert len(gateway.gateway.switch.tasks) == 0
    assert rfc4733.tracked()[0] == receivers
    assert link is None or link.closed.is_set()  # an in-process media link goes with its call


async def test_rfc4733_digits_reach_the_bridged_party(pair: Any) -> None:
    alice, bot = pair
    await connect(alice, bot)
    await alice.phone.send_dtmf_tone(input="5#9")
    received = await bot.wait("dtmf:tone-received", 3)
    assert [e.get("tone") for e in received] == ["5", "#", "9"]
    assert {e.get("method") for e in received} == {"rfc4733"}
    await bot.phone.send_dtmf_tone(input="7*")  # and the other way
    back = await alice.wait("dtmf:tone-received", 2)
    assert [e.get("tone") for e in back] == ["7", "*"]


async def test_dialling_nobody_ends_with_a_reason(pair: Any) -> None:
    alice, _ = pair
    await alice.phone.dial("5550001099")
    ended = await alice.wait("call:disconnected")
    assert ended[0].get("message") == "User not found"
    assert alice.phone.current_call is None


async def test_a_second_call_waits_while_the_session_has_one_ringing(
    gateway: GatewayServer,
) -> None:
    url = gateway.url
    alice, bob, carol = Party(url, "alice"), Party(url, "bob"), Party(url, "carol")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bob, url, "ACCOUNT_ID", "bob@ivrbot.local")
    await login(carol, url, "ACCOUNT_ID", "carol@ivrbot.local")
    try:
        await alice.phone.dial("bob@ivrbot.local")
        await bob.wait("call:incoming")
        await carol.phone.dial("bob@ivrbot.local")
        await carol.wait("call:ringback-provided")
        await asyncio.sleep(0.3)
        assert len(bob.events["call:incoming"]) == 1  # carol's call waits, it is not refused
        await bob.phone.reject()  # alice's call is settled: now carol's rings
        await alice.wait("call:rejected")
        incoming = await bob.wait("call:incoming", 2)
        assert incoming[1]["from"] == "sip:carol@ivrbot.local"
        await bob.phone.answer()
        await carol.wait("call:connected")
    finally:
        for party in (alice, bob, carol):
            await party.phone.close()
