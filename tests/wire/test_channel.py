"""The event channel by long-poll, and what one session may see of another's calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from ivrbot.config import Settings
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

pytestmark = pytest.mark.e2e


@pytest.fixture
async def short_poll() -> AsyncIterator[GatewayServer]:
    server = GatewayServer(Settings(port=0, db=":memory:", long_poll_s=0.5))
    await server.start()
    yield server
    await server.stop()


async def raw_session(http: aiohttp.ClientSession, url: str, user: str) -> tuple[str, str]:
    token = await fetch_token(url)
    auth = {"Authorization": f"Bearer {token}"}
    async with http.put(f"{url}/RTC/v1/userIds/{user}", headers=auth) as resp:
        assert resp.status == 204
    body = {"session": {"mediaType": "dtls-srtp", "ice": "true", "services": ["ip_voice_call"]}}
    async with http.post(f"{url}/RTC/v1/sessions", json=body, headers=auth) as resp:
        assert resp.status == 201
        return token, resp.headers["Location"]


async def test_long_poll_answers_204_when_idle_and_delivers_invitations(
    short_poll: GatewayServer,
) -> None:
    url = short_poll.url
    async with aiohttp.ClientSession() as http:
        token, path = await raw_session(http, url, "poller@ivrbot.local")
        auth = {"Authorization": f"Bearer {token}"}
        started = time.monotonic()
        async with http.get(f"{url}{path}/events", headers=auth) as resp:
            assert resp.status == 204
        assert 0.4 < time.monotonic() - started < 3
        caller = Party(url, "caller")
        await login(caller, url, "ACCOUNT_ID", "caller@ivrbot.local")
        try:
            await caller.phone.dial("poller@ivrbot.local")
            async with http.get(f"{url}{path}/events", headers=auth) as resp:
                assert resp.status == 200
                events = (await resp.json())["events"]["eventList"]
            event = events[0]["eventObject"]
            assert event["type"] == "calls" and event["state"] == "invitation-received"
            assert event["from"] == "sip:caller@ivrbot.local"
            assert event["sdp"].startswith("v=0") and "telephone-event" in event["sdp"]
            assert event["resourceURL"].startswith(f"{path}/calls/")
        finally:
            await caller.phone.close()


async def test_a_session_cannot_see_or_touch_another_sessions_call(gateway: GatewayServer) -> None:
    url = gateway.url
    alice, bob = Party(url, "alice"), Party(url, "bob")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bob, url, "ACCOUNT_ID", "bob@ivrbot.local")
    mallory = Phone(url)
    await mallory.login(token=await fetch_token(url), user_id="mallory@ivrbot.local")
    try:
        call = await alice.phone.dial("bob@ivrbot.local")
        await bob.wait("call:incoming")
        alice_call = f"{alice.phone.session_path}/calls/{call.id}"
        mallory_call = f"{mallory.session_path}/calls/{call.id}"
        headers: dict[str, Any] = {"x-calls-action": "initiate-call-hold"}
        for path in (alice_call, mallory_call):  # someone else's session, or own with their id
            for method in ("PUT", "DELETE"):
                resp = await mallory.transport.request(method, path, {}, headers)
                assert resp.status == 404, (method, path, resp.status)
        # the call is untouched
        assert len(gateway.gateway.switch.calls) == 1
        await bob.phone.answer()
        await alice.wait("call:connected")
    finally:
        for phone in (alice.phone, bob.phone, mallory):
            await phone.close()
