"""An operator finds the way in, in headless Chromium: the dashboard login that ``ivrbot
run``'s banner gives in development mode works as printed; out of development mode the
softphone asks for an API key, says so when it has none, and logs in with one."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page

from ivrbot.config import Settings
from ivrbot.serve import Runner
from tests.helpers import free_port
from tests.web.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

FRONT = """\
from ivrbot.flow import Flow, Hangup, Say
flow = Flow("front", number="5550001098")
flow.add(Say("hi", "Hello from the front desk."))
flow.add(Hangup("bye", "Goodbye."))
"""
SECRET = "operator-secret-0123456789"
KEY = "app-server-key-0123456789"
LOGIN = re.compile(r"log in: client id (\S+), secret (\S+) \(development mode\)")


def flows_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "front.py").write_text(FRONT)
    return folder


async def test_the_dashboard_login_printed_by_the_banner_works(
    dashboard: Page, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IVRBOT_")}
    env |= {"IVRBOT_DB": str(tmp_path / "ivrbot.db"), "IVRBOT_RECORDINGS": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivrbot", "run", str(flows_folder(tmp_path)), "--port", str(port),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        banner = ""
        async with asyncio.timeout(60):
            while "flow front" not in banner:
                line = await proc.stdout.readline()
                assert line, f"ivrbot run exited early: {banner}"
                banner += line.decode()
        print(banner)
        found = LOGIN.search(banner)
        assert found, banner
        client_id, secret = found.groups()
        assert "to leave development mode set IVRBOT_CLIENT_SECRET" in banner
        assert "IVRBOT_API_KEYS" in banner and "--api-key" in banner

        await dashboard.goto(f"http://127.0.0.1:{port}/dashboard")
        await dashboard.wait_for_selector("body[data-ready=true]")
        await dashboard.fill("#client-id", client_id)
        await dashboard.fill("#client-secret", secret)
        await dashboard.click("#login")
        await dashboard.wait_for_selector("#status:text-is('live')")
        assert await dashboard.is_visible("#bots tbody tr[data-flow=front]")
    finally:
        if proc.returncode is None:
            proc.terminate()
            async with asyncio.timeout(15):
                await proc.wait()


@pytest.fixture
async def locked(tmp_path: Path) -> AsyncIterator[Runner]:
    """``ivrbot run`` out of development mode: a client secret and an API key set."""
    settings = Settings(
        port=0, db=str(tmp_path / "ivrbot.db"), recordings=tmp_path / "recordings",
        client_secret=SECRET, api_keys=[KEY], dev_mode="off",
    )  # fmt: skip
    runner = Runner(flows_folder(tmp_path), settings)
    await runner.start()
    yield runner
    await runner.stop()


async def test_the_softphone_takes_an_api_key_out_of_development_mode(
    page: Page, locked: Runner
) -> None:
    url = locked.server.url
    await page.goto(f"{url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    assert await page.is_visible("#api-key")  # /config says: not in development mode
    assert await page.get_attribute("#api-key", "type") == "password"
    await page.fill("#user", "alice")
    await page.click("#login")
    await page.wait_for_selector("#message:not([hidden])")
    message = await page.text_content("#message")
    assert message == (
        "401: this gateway needs an API key: enter one of its IVRBOT_API_KEYS under API key"
    )
    await page.fill("#api-key", "not-one-of-its-keys")
    await page.click("#login")
    await page.wait_for_selector("#message:has-text('refused the API key')")
    assert await page.is_hidden("#phone-panel")

    await page.fill("#api-key", KEY)
    await page.click("#login")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    assert await page.text_content("#me") == "alice@ivrbot.local"
    # kept in the page: after a reload the key is still there for the next login
    await page.reload()
    await page.wait_for_selector("body[data-ready=true]")
    assert await page.input_value("#api-key") == KEY
