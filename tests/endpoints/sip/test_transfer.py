"""Transfers across SIP and WebRTC, bridged in the gateway: a SIP caller (baresip) sent by a
flow to a WebRTC agent, and a WebRTC caller sent by a flow to a SIP phone through a trunk.
Who hears whom is measured on both sides: the SIP phone's microphone plays one tone, the
WebRTC party another (Goertzel, ivrbot/testing/audio.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import Trunk
from ivrbot.flow.runner import Bot
from ivrbot.media.frames import WIRE_RATE
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.testing.caller import SimulatedCaller
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.conftest import MakeSip, desk
from tests.endpoints.sip.peers import Baresip
from tests.flow.test_transfer_steps import (
    AGENT,
    HEARD_DB,
    SILENT_DB,
    Agent,
    agent_phone,
    music_db,
    recent,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker
SIP_HZ, WEBRTC_HZ = 700.0, 1300.0  # the SIP phone's microphone, the WebRTC party's
SIP_NUMBER = "5550002000"  # reached through the trunk


def tail(phone: Baresip, seconds: float = 1.0) -> tuple[np.ndarray, int]:
    pcm, rate = phone.heard()
    return pcm[-int(seconds * rate) :], rate


@contextlib.asynccontextmanager
async def sip_caller_with_agent(
    gateway: GatewayServer, tts: Synthesizer, sip: SipConnector, tmp_path: Path
) -> AsyncIterator[tuple[Baresip, Agent, Bot]]:
    """A SIP phone (700 Hz microphone) calls the desk, which transfers it to the WebRTC
    agent (1300 Hz); yields once the agent is connected."""
    agent = await agent_phone(gateway, answer_after_s=0.3)
    phone = Baresip(tmp_path, mic_hz=SIP_HZ)
    async with desk(gateway, tts, AGENT) as bot:
        try:
            await phone.start()
            await phone.command("dial", f"sip:5550001011@127.0.0.1:{sip.port}")
            async with asyncio.timeout(15):
                await agent.connected.wait()
            yield phone, agent, bot
        finally:
            await phone.stop()
            await agent.phone.close()


async def test_a_sip_caller_transferred_to_a_webrtc_agent(
    gateway: GatewayServer, tts: Synthesizer, sip_local: SipConnector, tmp_path: Path
) -> None:
    async with sip_caller_with_agent(gateway, tts, sip_local, tmp_path) as (phone, agent, bot):
        await bot.wait_records(1)
        await asyncio.sleep(1.5)
        agent_hears_sip = tone_dbfs(recent(agent.ear), SIP_HZ)
        await phone.hangup()
        heard, rate = tail(phone)
        outcome = bot.records[0].outcome
    sip_hears_agent = tone_dbfs(heard, WEBRTC_HZ, rate)
    print(f"agent hears SIP {agent_hears_sip:.1f} dB, SIP hears agent {sip_hears_agent:.1f} dB")
    assert agent_hears_sip > HEARD_DB and sip_hears_agent > HEARD_DB
    assert tone_dbfs(heard, SIP_HZ, rate) < SILENT_DB  # no echo of its own voice
    assert outcome == "transferred"


async def test_a_webrtc_caller_transferred_to_a_sip_phone(
    gateway: GatewayServer,
    tts: Synthesizer,
    make_sip: MakeSip,
    tmp_path: Path,
) -> None:
    phone = Baresip(tmp_path, user=SIP_NUMBER, mic_hz=SIP_HZ)
    trunk = Trunk("pbx", uri=f"sip:127.0.0.1:{phone.sip_port}", prefixes=("5550002",))
    await make_sip({"pbx": trunk})
    caller = SimulatedCaller(gateway.url, tts)
    async with desk(gateway, tts, SIP_NUMBER) as bot:
        try:
            await phone.start(
                f"<sip:{SIP_NUMBER}@127.0.0.1:{phone.sip_port}>;regint=0;answermode=auto"
            )
            await caller.dial("5550001011")
            assert caller.call is not None
            caller.call.play(sine(WEBRTC_HZ, 30.0), WIRE_RATE, "caller tone")
            await bot.wait_records(1, timeout_s=20)
            await asyncio.sleep(1.5)
            caller_hears_sip = tone_dbfs(recent(caller.ear), SIP_HZ)
            await caller.hangup()
            await phone.wait_for_log("audio: destroyed")
            heard, rate = tail(phone, 1.5)
        finally:
            await caller.close()
            await phone.stop()
        outcome = bot.records[0].outcome
    sip_hears_caller = tone_dbfs(heard[: int(rate)], WEBRTC_HZ, rate)
    print(f"caller hears SIP {caller_hears_sip:.1f} dB, SIP hears caller {sip_hears_caller:.1f}")
    assert caller_hears_sip > HEARD_DB and sip_hears_caller > HEARD_DB
    assert outcome == "transferred"


async def test_a_sip_phone_holds_and_the_agent_hears_music(
    gateway: GatewayServer, tts: Synthesizer, sip_local: SipConnector, tmp_path: Path
) -> None:
    heard: dict[str, float] = {}
    async with sip_caller_with_agent(gateway, tts, sip_local, tmp_path) as (phone, agent, _):
        await asyncio.sleep(1.0)
        await phone.command("hold")  # re-INVITE a=sendonly
        await phone.wait_for_log("hold")
        await asyncio.sleep(1.5)
        heard["held: SIP tone"] = tone_dbfs(recent(agent.ear), SIP_HZ)
        heard["held: music"] = music_db(recent(agent.ear))
        await phone.command("resume")
        await asyncio.sleep(1.5)
        heard["resumed: SIP tone"] = tone_dbfs(recent(agent.ear), SIP_HZ)
        heard["resumed: music"] = music_db(recent(agent.ear))
    print({k: round(v, 1) for k, v in heard.items()})
    assert heard["held: music"] > HEARD_DB and heard["held: SIP tone"] < SILENT_DB
    assert heard["resumed: SIP tone"] > HEARD_DB and heard["resumed: music"] < SILENT_DB
