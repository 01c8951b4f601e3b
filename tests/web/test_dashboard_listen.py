"""Listening in from the dashboard, in headless Chromium: the operator clicks a live call
and hears both parties (measured in the page with an AnalyserNode), while the parties keep
hearing only each other (measured with Goertzel on the Python side); stopping, and the
call's end, close the operator's leg.
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Page

from ivrbot.config import Settings
from ivrbot.testing.audio import sine
from ivrbot.web.listen import LISTENERS
from ivrbot.wire.server import GatewayServer
from tests.web.conftest import MIC_HZ, log_in, stream_level_js
from tests.web.test_softphone import HEARD_DB, SILENT_DB, hears, party_level, silent
from tests.wire.test_calls import Party, connect, login

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

ALICE_HZ, BOT_HZ = 440.0, 1000.0

# The level (dBFS) of `freq` in the last ~0.7 s of what the dashboard plays while listening.
LISTEN_METER_JS = stream_level_js("(await import('/static/listen.js')).listenStream()")


async def operator_level(page: Page, freq: float) -> float:
    return float(await page.evaluate(LISTEN_METER_JS, freq))


async def test_operator_listens_in_to_a_live_call(dashboard: Page, gateway: GatewayServer) -> None:
    url = gateway.url
    alice, bot = Party(url, "alice"), Party(url, "bot")
    await login(alice, url, "ACCOUNT_ID", "alice@ivrbot.local")
    await login(bot, url, "VIRTUAL_NUMBER", "vtn:5550001000")
    listeners = gateway.app[LISTENERS]
    try:
        out, inc = await connect(alice, bot)
        out.play(sine(ALICE_HZ, 120.0))
        inc.play(sine(BOT_HZ, 120.0))
        await log_in(dashboard, url, Settings().client_secret)
        await dashboard.wait_for_selector("#status:text-is('live')")
        button = dashboard.locator("#calls tbody tr button.listen")
        await button.click()
        await dashboard.wait_for_selector("#calls button.listen:text-is('Stop')")
        await hears("the operator hears alice", lambda: operator_level(dashboard, ALICE_HZ))
        await hears("the operator hears the bot", lambda: operator_level(dashboard, BOT_HZ))
        # the parties still hear each other, and nothing of the operator's side
        assert await party_level(alice, BOT_HZ) > HEARD_DB
        assert await party_level(bot, ALICE_HZ) > HEARD_DB
        assert await party_level(alice, MIC_HZ) < SILENT_DB
        assert await party_level(bot, MIC_HZ) < SILENT_DB
        assert len(listeners.active) == 1

        await button.click()  # stop
        await dashboard.wait_for_selector("#calls button.listen:text-is('Listen')")
        assert await operator_level(dashboard, ALICE_HZ) == -120  # no stream any more
        assert listeners.active == {}

        await button.click()  # again, until the call ends
        await hears("listening again", lambda: operator_level(dashboard, BOT_HZ))
        await alice.phone.hangup()
        await dashboard.wait_for_selector("#no-calls:not([hidden])")
        await dashboard.wait_for_selector("body[data-listening='']")
        async with asyncio.timeout(5):
            while listeners.active:
                await asyncio.sleep(0.05)
        await silent("the call ended", lambda: operator_level(dashboard, BOT_HZ))
    finally:
        await alice.phone.close()
        await bot.phone.close()
