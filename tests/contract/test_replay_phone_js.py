"""The recorded sequences of the real gateway (tests/contract/sequences/) replayed to the
browser's Phone (ivrbot/web/static/phone.js and its siblings) in headless Chromium: the
page's fetch and WebSocket play the recording (tests/contract/replay.js), the gateway's end
of each call's media is a second peer connection in the page. phone.js must send the
recorded requests and end as the Python Phone did on the real gateway: the same states of
its calls, the same Phone-API events in the same order (docs/spec/phone-api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page

from tests.contract.recording import SESSION_EVENTS, load, names
from tests.contract.scenarios import within

pytestmark = [pytest.mark.contract, pytest.mark.xdist_group("chromium")]  # one browser at a time

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "ivrbot" / "web" / "static"
PAGE = (
    '<!doctype html><meta charset="utf-8"><script type="module" src="/replay/replay.js"></script>'
)
SESSIONS = [(n, s) for n in names() for s in load(n)["sessions"]]
REPLAY_S = 60.0  # replay.js bounds each step (STEP_MS); this bounds the page as a whole


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[str]:
    """phone.js and the replay, served from 127.0.0.1 (a secure context: WebRTC works)."""
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def replay_js(_: web.Request) -> web.FileResponse:
        return web.FileResponse(Path(__file__).with_name("replay.js"))

    app.router.add_get("/", page)
    app.router.add_get("/replay/replay.js", replay_js)
    app.router.add_static("/static", STATIC)
    runner = web.AppRunner(app)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def page(browser: Browser, site: str) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    crashes: list[str] = []
    page.on("pageerror", lambda exc: crashes.append(str(exc)))
    page.on("console", lambda msg: print(f"[page {msg.type}] {msg.text}"))
    await page.goto(site)
    await page.wait_for_function("window.replay !== undefined")
    yield page
    await context.close()
    assert crashes == [], f"uncaught JavaScript errors: {crashes}"


@pytest.mark.parametrize(("scenario", "session"), SESSIONS, ids=[f"{n}-{s}" for n, s in SESSIONS])
async def test_phone_js_replays_the_recording(page: Page, scenario: str, session: str) -> None:
    recorded = load(scenario)["sessions"][session]
    async with within(f"phone.js to replay {scenario} as {session}", REPLAY_S):
        told = await page.evaluate(
            "(args) => window.replay(...args)", [recorded["wire"], session, list(SESSION_EVENTS)]
        )
    assert told == recorded["expect"]
