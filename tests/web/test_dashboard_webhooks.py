"""The dashboard's webhooks panel shows a failed delivery (a receiver that refuses it),
in Chromium."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page

from ivrbot.compose import Parts, assemble
from ivrbot.config import DEV_CLIENT_SECRET, Settings
from ivrbot.integrations.routes import SENDER
from ivrbot.speech.tts import Synthesizer
from tests.web.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time


@pytest.fixture
async def parts_with_hooks(tmp_path: Path, tts: Synthesizer) -> AsyncIterator[Parts]:
    settings = Settings(port=0, db=str(tmp_path / "g.db"), webhook_secret="whsec-dashboard-test",
                        webhook_tries=2, webhook_backoff_s=0.1)  # fmt: skip
    async with assemble(settings, tts=tts) as parts:
        yield parts


async def test_a_refused_webhook_shows_on_the_dashboard(
    parts_with_hooks: Parts, dashboard: Page
) -> None:
    parts = parts_with_hooks

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=410, text="gone")

    refuses = web.Application()
    refuses.router.add_post("/hook", gone)
    runner = web.AppRunner(refuses)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        assert parts.server is not None
        sender = parts.server.app[SENDER]
        sender.send(f"http://127.0.0.1:{port}/hook?key=x", "call:1", {"type": "call.completed"})
        sender.send(f"http://127.0.0.1:{port}/hook", "call:2", {"type": "call.answered"})
        await sender.idle()
    finally:
        await runner.cleanup()

    await log_in(dashboard, parts.url, DEV_CLIENT_SECRET)
    panel = dashboard.locator("#webhooks-panel")
    await panel.wait_for(state="visible")
    assert await dashboard.text_content("#webhooks-failed") == "2 failed"
    summary = await dashboard.text_content("#webhooks-summary") or ""
    assert summary.startswith("0 delivered, 2 failed") and "signed" in summary
    rows = await dashboard.locator("#webhooks-failures tbody tr").all_inner_texts()
    assert len(rows) == 2
    assert f"http://127.0.0.1:{port}/hook\tHTTP 410\t1" in rows[0]  # no query string shown
    assert "call.answered" in rows[0] and "call.completed" in rows[1]
    async with aiohttp.ClientSession() as http:
        metrics = await (await http.get(f"{parts.url}/metrics")).text()
    assert 'ivrbot_webhooks_failed_total{event="call.completed"}' in metrics
