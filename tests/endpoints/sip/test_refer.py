"""REFER out: a SIP caller (baresip "alice", 700 Hz microphone) calls ivrbot's extension
through the PBX (kamailio); the flow transfers her blind to Bob (``sip:5550002000@PBX``, or
the number 5550002000 of a trunk with ``refer = true``), which ivrbot hands to her phone as
a REFER instead of bridging it. Alice's phone calls Bob (baresip,
registered at kamailio, 1300 Hz microphone) itself: each hears the other (measured in what
each phone decoded), ivrbot has no SIP call left, and the flow's record has the REFER's
NOTIFY progress. A REFER the phone turns down leaves the caller with the flow."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ivrbot.endpoints.sip.connector import SipConnector
from ivrbot.endpoints.sip.settings import Trunk
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.audio import tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.endpoints.sip.conftest import DESK, MakeSip, desk
from tests.endpoints.sip.peers import PBX_PASSWORD as PASSWORD
from tests.endpoints.sip.peers import Baresip, Kamailio
from tests.endpoints.sip.test_registrar import extension, registered
from tests.flow.test_transfer_steps import HEARD_DB, SILENT_DB

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("sip")]  # PJSIP media ports: one worker
ALICE_HZ, BOB_HZ = 700.0, 1300.0
BOB = "5550002000"  # registered at the PBX


async def office(make_sip: MakeSip, pbx: Kamailio) -> SipConnector:
    """ivrbot registered at the PBX as 201 (calls to it: the desk flow); numbers 5550002...
    are the PBX's, transferred there by REFER (a trunk with refer = true)."""
    office = dataclasses.replace(extension(pbx, PASSWORD)["office"], number=DESK)
    trunk = Trunk("pbx", uri=f"sip:127.0.0.1:{pbx.port}", prefixes=("5550002",), refer=True)
    sip = await make_sip({"pbx": trunk}, accounts={"office": office})
    await registered(sip, "office")
    return sip


def last_s(phone: Baresip, seconds: float = 1.0) -> tuple[np.ndarray, int]:
    pcm, rate = phone.heard()
    return pcm[-int(seconds * rate) :], rate


@pytest.mark.parametrize("to", ["sip:URI", "number"])
async def test_a_sip_caller_is_referred_to_the_pbx_and_talks_to_the_target(
    gateway: GatewayServer,
    tts: Synthesizer,
    make_sip: MakeSip,
    pbx: Kamailio,
    tmp_path: Path,
    to: str,
) -> None:
    sip = await office(make_sip, pbx)
    bob = Baresip(tmp_path, user=BOB, mic_hz=BOB_HZ)
    alice = Baresip(tmp_path, user="alice", mic_hz=ALICE_HZ)
    target = f"sip:{BOB}@127.0.0.1:{pbx.port}" if to == "sip:URI" else BOB
    async with desk(gateway, tts, target) as bot:
        try:
            await bob.start(f"<sip:{BOB}@127.0.0.1:{pbx.port}>;regint=60;answermode=auto")
            await bob.wait_for_log("200 OK")  # registered at kamailio
            await alice.start()
            await alice.command("dial", f"sip:201@127.0.0.1:{pbx.port}")
            records = await bot.wait_records(1, timeout_s=20)
            await bob.wait_for_log("answering call")
            # ivrbot hung up its leg (BYE) once the transfer succeeded
            await alice.wait_for_log(f"sip:201@127.0.0.1:{pbx.port}: session closed")
            await asyncio.sleep(2.0)  # alice and bob talk
            sip_calls = len(sip.status()["calls"])
            await alice.hangup()  # their recordings are complete once the call is over
            await bob.wait_for_log("audio: destroyed")
            alice_hears, alice_rate = last_s(alice)
            bob_hears, bob_rate = last_s(bob)
        finally:
            await alice.stop()
            await bob.stop()
    heard = {
        "alice hears bob": tone_dbfs(alice_hears, BOB_HZ, alice_rate),
        "bob hears alice": tone_dbfs(bob_hears, ALICE_HZ, bob_rate),
        "alice hears herself": tone_dbfs(alice_hears, ALICE_HZ, alice_rate),
    }
    print({k: round(v, 1) for k, v in heard.items()})
    assert heard["alice hears bob"] > HEARD_DB and heard["bob hears alice"] > HEARD_DB
    assert heard["alice hears herself"] < SILENT_DB
    assert sip_calls == 0  # ivrbot carries none of their audio: its SIP call ended
    record = records[0]
    transfer = record.transfers[0]
    print(transfer)
    assert record.outcome == "transferred" and transfer["outcome"] == "transferred"
    assert transfer["progress"][-1].startswith("200"), transfer  # the final NOTIFY
    assert "answering call on line 1 from sip:alice@" in bob.log()  # alice's phone called bob
    async with asyncio.timeout(5):
        while not (calls := await gateway.gateway.store.recent_calls()) or not calls[0].ended_at:
            await asyncio.sleep(0.05)
    assert calls[0].outcome == "transferred"


async def test_a_refer_the_target_turns_down_leaves_the_caller_with_the_flow(
    gateway: GatewayServer, tts: Synthesizer, make_sip: MakeSip, pbx: Kamailio, tmp_path: Path
) -> None:
    sip = await office(make_sip, pbx)
    alice = Baresip(tmp_path, user="alice", mic_hz=ALICE_HZ)
    async with desk(gateway, tts, f"sip:nobody@127.0.0.1:{pbx.port}") as bot:
        try:
            await alice.start()
            await alice.command("dial", f"sip:201@127.0.0.1:{pbx.port}")
            records = await bot.wait_records(1, timeout_s=30)  # kamailio: 404 for nobody
            # the flow said sorry and hung up
            await alice.wait_for_log(f"Call with sip:201@127.0.0.1:{pbx.port} terminated")
            await asyncio.sleep(0.3)  # its recording closed
            speech_s = alice.speech_s()
        finally:
            await alice.stop()
    transfer = records[0].transfers[0]
    print(transfer, speech_s)
    assert transfer["outcome"] != "transferred" and transfer["progress"], transfer
    assert records[0].path == ["transfer", "sorry", "bye"]
    assert speech_s > 1.5  # alice heard the sorry prompt and goodbye from the flow
    assert not sip.parties
