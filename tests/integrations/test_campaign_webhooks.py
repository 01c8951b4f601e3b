"""A campaign's webhooks over real calls: two contacts (one turns the call down, one never
answers), the flow's webhook gets each attempt as it settles and the campaign's end, and
each call's own events, signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ivrbot.campaign.campaign import Campaign, State
from ivrbot.campaign.contacts import read_contacts
from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.callees import Callee
from tests.integrations.test_calls_api import check_documented

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-campaign-test-secret"
CONTACTS = "number,name\n+1 212 555 0101,Pat\n+1 212 555 0102,Mo\n"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/hook", got
    await runner.cleanup()


def signed(headers: dict[str, str], body: bytes) -> bool:
    timestamp = headers["X-Ivrbot-Timestamp"].encode()
    mac = hmac.new(SECRET.encode(), timestamp + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("v1=" + mac, headers["X-Ivrbot-Signature"])


async def test_attempts_and_the_finish_go_to_the_flows_webhook(
    tmp_path: Path, tts: Synthesizer, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    settings = Settings(
        port=0, db=str(tmp_path / "gw.db"), webhook_secret=SECRET,
        virtual_numbers=["5550001013", "2125550101", "2125550102"],
        campaign_clock="60@2026-03-09T14:00:00+00:00",  # a Monday, 10:00 in New York
    )  # fmt: skip
    async with assemble(settings, tts=tts, campaigns=True) as parts:
        flow = load_flow_file(ROOT / "flows" / "reminder.py")
        flow.webhook = url
        await parts.serve(flow, inbound=False)
        await parts.start_campaigns()
        service = parts.campaigns
        assert service is not None
        imported = read_contacts(CONTACTS)
        campaign = Campaign("hooks", "reminder", calls_per_minute=600, ring_timeout_s=2,
                            retries={})  # fmt: skip
        await service.store.run(service.store.create, campaign, imported.contacts)
        callees = [Callee(parts.url, "+12125550101", "reject"),
                   Callee(parts.url, "+12125550102", "silent")]  # fmt: skip
        for callee in callees:
            await callee.login(tts)
        try:
            await service.control("hooks", "start")
            async with asyncio.timeout(60):
                while (await service.store.run(service.store.campaign, "hooks"))[1] is not (
                    State.FINISHED
                ):
                    await asyncio.sleep(0.2)
            assert parts.webhooks is not None
            await parts.webhooks.sender.idle()
            rows = await service.store.run(service.store.attempt_rows, "hooks")
        finally:
            for callee in callees:
                await callee.close()

    assert got and all(signed(headers, body) for headers, body in got)
    events: list[dict[str, Any]] = [json.loads(body) for _, body in got]
    for event in events:
        check_documented(event)
    attempts = [e for e in events if e["type"] == "campaign.attempt"]
    assert events[-1]["type"] == "campaign.finished"
    assert sorted(a["number"] for a in attempts) == ["+12125550101", "+12125550102"]
    stored = {r["number"]: r["outcome"] for r in rows}
    assert {a["number"]: a["outcome"] for a in attempts} == stored
    assert all(a["final"] and a["retry_at"] is None for a in attempts)
    assert all(a["campaign"] == {"name": "hooks", "flow": "reminder"} for a in attempts)
    finished = events[-1]
    counts: dict[str, int] = {}
    for outcome in stored.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    assert finished["outcomes"] == counts

    # each attempt's call: its own events, in order, ending with the record's outcome
    for attempt in attempts:
        calls = [e for e in events if e["type"].startswith("call.")]
        mine = [e for e in calls if e["call"]["id"] == attempt["call"]]
        assert mine[0]["type"] == "call.initiated" and mine[-1]["type"] == "call.completed"
        assert mine[0]["call"]["to"] == attempt["number"]
        assert [e["sequence"] for e in mine] == list(range(1, len(mine) + 1))
        assert mine[-1]["duration_s"] == 0.0
