"""The campaigns on the HTTP API: the dashboard's contract, and only for the operator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from ivrbot.campaign import api
from ivrbot.campaign.campaign import Campaign
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.scheduler import CampaignService
from ivrbot.campaign.store import CampaignStore
from ivrbot.config import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Settings
from ivrbot.credentials import Credentials
from ivrbot.gateway.server import GatewayServer
from ivrbot.phone.transport_remote import fetch_token

NIGHT_IN_NEW_YORK = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT: nobody is called
OPERATOR = Credentials.operator(DEV_CLIENT_ID, DEV_CLIENT_SECRET).headers()  # HTTP Basic


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[GatewayServer]:
    settings = Settings(port=0, db=str(tmp_path / "gw.db"))
    server = GatewayServer(settings)
    store = CampaignStore(settings.db)
    contacts = read_contacts("number,vip\n+1 212 555 0101,yes\n+1 212 555 0102,no\n").contacts
    store.create(Campaign("spring", "reminder"), contacts)
    service = CampaignService(store, Clock(1, NIGHT_IN_NEW_YORK), lambda _: None)
    api.add_routes(server.app, service)
    await server.start()
    await service.start()
    yield server
    await service.stop()
    await server.stop()


async def test_the_operator_lists_and_controls_campaigns(server: GatewayServer) -> None:
    async with aiohttp.ClientSession(server.url, headers=OPERATOR) as http:
        async with http.get("/ivrbot/campaigns") as resp:
            assert resp.status == 200
            assert await resp.json() == {"campaigns": [{
                "name": "spring", "flow": "reminder", "state": "created", "total": 2,
                "done": 0, "in_progress": 0, "outcomes": {}, "abandon_ratio": 0.0,
            }]}  # fmt: skip
        for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
            async with http.post(f"/ivrbot/campaigns/spring/{action}") as resp:
                assert resp.status == 200 and (await resp.json())["state"] == state
        async with http.post("/ivrbot/campaigns/spring/start") as resp:
            assert resp.status == 409 and "spring is running" in await resp.text()
        async with http.post("/ivrbot/campaigns/spring/cancel") as resp:
            body = await resp.json()
            assert body["state"] == "canceled" and body["done"] == 0  # 03:00: nobody called
        async with http.get("/ivrbot/campaigns/spring/attempts.csv") as resp:
            assert resp.status == 200 and (await resp.text()).startswith("contact_id,number,")
        async with http.get("/ivrbot/campaigns/autumn") as resp:
            assert resp.status == 404 and "no campaign named 'autumn'" in await resp.text()
        async with http.post("/ivrbot/campaigns/spring/explode") as resp:
            assert resp.status == 404


async def test_nobody_else_reads_or_controls_them(server: GatewayServer) -> None:
    user_token = await fetch_token(server.url)  # development mode: an anonymous token
    async with aiohttp.ClientSession(server.url) as http:
        async with http.get("/ivrbot/campaigns") as resp:
            assert resp.status == 401
        headers = {"Authorization": f"Bearer {user_token}"}
        async with http.get("/ivrbot/campaigns/spring", headers=headers) as resp:
            assert resp.status == 403
        async with http.post("/ivrbot/campaigns/spring/start", headers=headers) as resp:
            assert resp.status == 403
        async with http.get("/ivrbot/campaigns/spring/attempts.csv", headers=headers) as resp:
            assert resp.status == 403
        wrong = Credentials.operator(DEV_CLIENT_ID, "not-the-secret-at-all").headers()
        async with http.get("/ivrbot/campaigns", headers=wrong) as resp:
            assert resp.status == 401
