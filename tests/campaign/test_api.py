"""The campaigns on the HTTP API: the dashboard's contract, and only for the operator; the
CLI commands that ask ivrbot run (start, delete) and their one-line errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import aiohttp
import pytest
from click.testing import CliRunner

from ivrbot.campaign import api
from ivrbot.campaign.activity import activity
from ivrbot.campaign.campaign import Campaign, CampaignError, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.contacts import read_contacts
from ivrbot.campaign.scheduler import CampaignService
from ivrbot.campaign.store import CampaignStore
from ivrbot.cli import main
from ivrbot.config import DEV_CLIENT_ID, DEV_CLIENT_SECRET, Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.runner import Bot
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.wire.server import GatewayServer

NIGHT_IN_NEW_YORK = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)  # 03:00 EDT: nobody is called
OPERATOR = Credentials.operator(DEV_CLIENT_ID, DEV_CLIENT_SECRET).headers()  # HTTP Basic


CONTACTS = "number,vip\n+1 212 555 0101,yes\n+1 212 555 0102,no\n"
OUTSIDE_HOURS = (
    "outside calling hours until 08:00 callee-local (America/New_York) / 12:00 UTC "
    "on Tue 2026-03-10"
)


def served(flow: str) -> Bot | None:
    """ivrbot run serving the reminder flow only (nobody is dialled at 03:00: the bot is
    never asked to call)."""
    return cast(Bot, object()) if flow == "reminder" else None


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[CampaignService]:
    store = CampaignStore(tmp_path / "gw.db")
    store.create(Campaign("spring", "reminder"), read_contacts(CONTACTS).contacts)
    store.create(Campaign("orphan", "survey"), read_contacts(CONTACTS).contacts)
    yield CampaignService(store, Clock(1, NIGHT_IN_NEW_YORK), served)


@pytest.fixture
async def server(service: CampaignService) -> AsyncIterator[GatewayServer]:
    server = GatewayServer(Settings(port=0, db=service.store.path))
    api.add_routes(server.app, service)
    await server.start()
    await service.start()
    yield server
    await service.stop()
    await server.stop()


async def cli(*args: str) -> tuple[int, str, str]:
    """``ivrbot campaign ...`` (in a thread: it runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, main, ["campaign", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.contract
async def test_the_operator_lists_and_controls_campaigns(server: GatewayServer) -> None:
    async with aiohttp.ClientSession(server.url, headers=OPERATOR) as http:
        async with http.get("/ivrbot/campaigns") as resp:
            assert resp.status == 200
            spring, orphan = (await resp.json())["campaigns"]
            assert spring == {
                "name": "spring", "flow": "reminder", "state": "created", "total": 2,
                "done": 0, "in_progress": 0, "outcomes": {}, "abandon_ratio": 0.0,
                "activity": {"why": "not-started",
                             "text": "not started: ivrbot campaign start spring",
                             "next_call_at": None, "next_call_local": None, "zone": None},
            }  # fmt: skip
            assert orphan["name"] == "orphan"
        for action, state in (("start", "running"), ("pause", "paused"), ("resume", "running")):
            async with http.post(f"/ivrbot/campaigns/spring/{action}") as resp:
                body = await resp.json()
                assert resp.status == 200 and body["state"] == state
        assert body["activity"]["why"] == "outside-hours"
        assert body["activity"]["text"] == OUTSIDE_HOURS
        async with http.post("/ivrbot/campaigns/spring/start") as resp:
            assert resp.status == 409 and "spring is running" in await resp.text()
        async with http.post("/ivrbot/campaigns/spring/cancel") as resp:
            body = await resp.json()
            assert body["state"] == "canceled" and body["done"] == 0  # 03:00: nobody called
        async with http.get("/ivrbot/campaigns/spring/attempts.csv") as resp:
            assert resp.status == 200 and (await resp.text()).startswith("campaign,contact_id,")
        async with http.get("/ivrbot/campaigns/autumn") as resp:
            assert resp.status == 404 and "no campaign named 'autumn'" in await resp.text()
        async with http.post("/ivrbot/campaigns/spring/explode") as resp:
            assert resp.status == 404


@pytest.mark.contract
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


@pytest.mark.contract
async def test_start_refuses_a_flow_not_served_and_an_unknown_name(
    server: GatewayServer, service: CampaignService
) -> None:
    async with aiohttp.ClientSession(server.url, headers=OPERATOR) as http:
        async with http.post("/ivrbot/campaigns/orphan/start") as resp:
            assert resp.status == 409
            assert "its flow 'survey' is not served by this ivrbot run" in await resp.text()
    assert service.store.campaign("orphan")[1] is State.CREATED
    code, _, err = await cli("start", "orphan", "--gateway", server.url)
    assert (code, err) == (1, "ivrbot: error: campaign orphan: its flow 'survey' is not served "
                              "by this ivrbot run (run it with the flows folder that has "
                              "survey.py)\n")  # fmt: skip
    code, _, err = await cli("start", "autumn", "--gateway", server.url)
    assert (code, err) == (1, "ivrbot: error: no campaign named 'autumn' (ivrbot campaign list)\n")
    code, out, _ = await cli("start", "spring", "--gateway", server.url)
    assert (code, out) == (0, f"campaign spring: running\nnow: {OUTSIDE_HOURS}\n")
    code, _, err = await cli("pause", "spring", "--gateway", "http://127.0.0.1:9")
    assert code == 1 and len(err.splitlines()) == 1
    assert err.startswith("ivrbot: error: no ivrbot run at http://127.0.0.1:9 (")


@pytest.mark.contract
async def test_wrong_operator_credentials_are_one_line(
    server: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IVRBOT_CLIENT_SECRET", "not-the-secret-at-all")
    code, _, err = await cli("start", "spring", "--gateway", server.url)
    assert (code, err) == (1, f"ivrbot: error: 401 from ivrbot run at {server.url}: unknown "
                              "client or wrong client secret (campaign commands log in as the "
                              "operator: "
                              "IVRBOT_CLIENT_ID and IVRBOT_CLIENT_SECRET as ivrbot run has them, "
                              "or an API key: ivrbot campaign --api-key KEY, or "
                              "IVRBOT_API_KEY)\n")  # fmt: skip


@pytest.mark.contract
async def test_an_api_key_controls_campaigns_out_of_development_mode(
    service: CampaignService, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "campaign-key-0123456789abcdef"
    server = GatewayServer(Settings(port=0, db=service.store.path, client_secret="s" * 32,
                                    api_keys=[key]))  # fmt: skip
    api.add_routes(server.app, service)
    await server.start()
    await service.start()
    try:
        monkeypatch.delenv("IVRBOT_API_KEY", raising=False)
        code, _, err = await cli("start", "spring", "--gateway", server.url)
        assert code == 1 and err.startswith(f"ivrbot: error: 401 from ivrbot run at {server.url}")
        code, out, _ = await cli("--api-key", key, "start", "spring", "--gateway", server.url)
        assert (code, out.splitlines()[0]) == (0, "campaign spring: running")
        monkeypatch.setenv("IVRBOT_API_KEY", key)
        code, out, _ = await cli("pause", "spring", "--gateway", server.url)
        assert (code, out.splitlines()[0]) == (0, "campaign spring: paused")
        wrong = {"X-API-Key": "not-a-key-of-this-gateway"}
        async with aiohttp.ClientSession(server.url, headers=wrong) as http:
            async with http.get("/ivrbot/campaigns") as resp:
                assert resp.status == 401 and "unknown API key" in await resp.text()
    finally:
        await service.stop()
        await server.stop()


@pytest.mark.contract
async def test_delete_and_create_again(server: GatewayServer, service: CampaignService) -> None:
    store = service.store
    assert (await cli("start", "spring", "--gateway", server.url))[0] == 0
    async with aiohttp.ClientSession(server.url, headers=OPERATOR) as http:
        async with http.delete("/ivrbot/campaigns/spring") as resp:
            assert resp.status == 409 and "cancel it first" in await resp.text()
    code, _, err = await cli("delete", "spring", "--gateway", server.url)
    assert (code, err) == (1, "ivrbot: error: campaign spring is running: cancel it first "
                              "(ivrbot campaign cancel spring) or delete it with --force\n")  # fmt: skip
    assert "pace" in store.jobs("spring")
    code, out, _ = await cli("delete", "spring", "--force", "--gateway", server.url)
    assert (code, out) == (0, f"campaign spring deleted by ivrbot run at {server.url}: "
                              "2 contacts, 0 attempts\n")  # fmt: skip
    assert store.jobs("spring") == set() and "spring" not in service.dialers
    async with aiohttp.ClientSession(server.url, headers=OPERATOR) as http:
        async with http.get("/ivrbot/campaigns/spring") as resp:
            assert resp.status == 404
        store.create(Campaign("spring", "reminder", max_concurrent=1),
                     read_contacts(CONTACTS + "+1 212 555 0103,no\n").contacts)  # fmt: skip
        async with http.post("/ivrbot/campaigns/spring/start") as resp:
            body = await resp.json()
            assert (body["state"], body["total"], body["outcomes"]) == ("running", 3, {})
        assert service.dialers["spring"].campaign.max_concurrent == 1  # the new one
        async with http.delete("/ivrbot/campaigns/spring", params={"force": "true"}) as resp:
            assert await resp.json() == {"deleted": "spring", "contacts": 3, "attempts": 0}
        async with http.delete("/ivrbot/campaigns/spring") as resp:
            assert resp.status == 404


@pytest.mark.unit
async def test_a_running_campaign_whose_flow_is_gone_is_paused_not_failed(
    tmp_path: Path,
) -> None:
    """ivrbot run restarted without the campaign's flow: no contact is claimed and failed;
    the campaign is paused and status says why."""
    store = CampaignStore(tmp_path / "c.db")
    store.create(Campaign("orphan", "survey"), read_contacts(CONTACTS).contacts)
    store.set_state("orphan", State.RUNNING)
    noon = Clock(1, datetime(2026, 3, 10, 16, 0, tzinfo=UTC))  # the window is open
    service = CampaignService(store, noon, served)
    await service.tick("orphan")
    assert store.campaign("orphan")[1] is State.PAUSED and store.attempt_rows("orphan") == []
    now = activity(store, "orphan", noon)
    assert now.why == "flow-not-served" and now.text.startswith(
        "paused: its flow 'survey' was not served by ivrbot run at 2026-03-10 16:00 UTC: "
        "serve it, then ivrbot campaign resume orphan"
    )
    with pytest.raises(CampaignError, match="its flow 'survey' is not served"):
        await service.control("orphan", "resume")
    store.close()
