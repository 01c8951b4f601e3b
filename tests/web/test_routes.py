"""The web routes: the page and its files are served, and the event channel's WebSocket
takes the bearer token from ``?access_token=`` (browsers cannot set its headers)."""

from __future__ import annotations

import aiohttp
import pytest

from ivrbot.phone.transport_remote import fetch_token
from ivrbot.wire.server import GatewayServer

pytestmark = pytest.mark.contract


async def test_softphone_and_sdk_are_served(gateway: GatewayServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/softphone") as resp:
            assert resp.status == 200
            assert resp.content_type == "text/html"
            assert '<script type="module" src="/static/softphone.js">' in await resp.text()
        for name in ("phone.js", "softphone.js"):
            async with http.get(f"{gateway.url}/static/{name}") as resp:
                assert resp.status == 200
                assert "javascript" in resp.content_type
        async with http.get(f"{gateway.url}/static/../__init__.py") as resp:
            assert resp.status in (403, 404)


async def test_event_channel_websocket_takes_the_token_from_the_query(
    gateway: GatewayServer,
) -> None:
    token = await fetch_token(gateway.url, "ACCOUNT_ID")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{gateway.url}/RTC/v1/userIds/web@ivrbot.local", headers=auth) as r:
            assert r.status == 204
        body = {"session": {"mediaType": "dtls-srtp", "ice": "true", "services": []}}
        async with http.post(f"{gateway.url}/RTC/v1/sessions", json=body, headers=auth) as r:
            session = r.headers["Location"]
        async with http.post(f"{gateway.url}{session}/websockets", headers=auth) as r:
            ws_path = r.headers["Location"]
        url = f"{gateway.url}{ws_path}"
        ws = await http.ws_connect(url, params={"access_token": token})
        await ws.close()
        for params in ({}, {"access_token": "not-a-token"}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url, params=params)
            assert refused.value.status == 401
