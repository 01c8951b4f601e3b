"""Listening in through the dashboard's API, with real aiortc peers (no browser): only the
operator may; the listener hears both parties; what a listener sends reaches nobody."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from aiortc import RTCSessionDescription

from ivrbot.endpoints.webrtc.peer import new_peer_connection
from ivrbot.media.tracks import OutboundAudio, pump
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.testing.audio import sine
from ivrbot.web.listen import LISTENERS
from ivrbot.wire.server import GatewayServer
from tests.web.test_dashboard_api import operator
from tests.web.test_softphone import SILENT_DB, party_level
from tests.wire.test_calls import Party, connect, login
from tests.wire.test_reoffer import Heard, until_heard

pytestmark = pytest.mark.e2e

ALICE_HZ, BOT_HZ, OPERATOR_HZ = 440.0, 1000.0, 600.0


async def post(url: str, token: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_only_the_operator_listens_and_nothing_it_sends_reaches_the_call(
    gateway: GatewayServer,
) -> None:
    url = gateway.url
    alice, bot = Party(url, "alice"), Party(url, "bot")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    ear = new_peer_connection()  # a listener that also sends a tone (the UI would not)
    mouth, heard = OutboundAudio(), Heard()
    pumps: list[asyncio.Task[None]] = []
    ear.addTrack(mouth)
    ear.on("track", lambda track: pumps.append(asyncio.create_task(pump(track, heard))))
    try:
        out, inc = await connect(alice, bot)
        out.play(sine(ALICE_HZ, 60.0))
        inc.play(sine(BOT_HZ, 60.0))
        (call_id,) = gateway.gateway.switch.calls
        await ear.setLocalDescription(await ear.createOffer())
        offer = {"sdp": ear.localDescription.sdp}
        listen = f"{url}/ivrbot/calls/{call_id}/listen"

        assert (await post(listen, "", offer))[0] == 401
        assert (await post(listen, await fetch_token(url, "ACCOUNT_ID"), offer))[0] == 403
        token = await operator(gateway)
        assert (await post(f"{url}/ivrbot/calls/nope/listen", token, offer))[0] == 404
        assert (await post(listen, token, {"sdp": "not an offer"}))[0] == 400

        status, body = await post(listen, token, offer)
        assert status == 201, body
        await ear.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
        mouth.play(sine(OPERATOR_HZ, 60.0))
        await until_heard("the listener hears alice", heard, ALICE_HZ)
        await until_heard("the listener hears the bot", heard, BOT_HZ)
        assert await party_level(alice, OPERATOR_HZ, 1.0) < SILENT_DB
        assert await party_level(bot, OPERATOR_HZ, 1.0) < SILENT_DB

        await alice.phone.hangup()  # the call's end ends the listener
        async with asyncio.timeout(5):
            while gateway.app[LISTENERS].active:
                await asyncio.sleep(0.05)
    finally:
        for task in pumps:
            task.cancel()
        await ear.close()
        await alice.phone.close()
        await bot.phone.close()
