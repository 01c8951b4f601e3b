"""The softphone's two-call and conference buttons in headless Chromium, on ``ivrbot run``.

alice's softphone calls the bank bot from its list of bots, picks the agent with a key from
the keyboard and is transferred (the flow's warm transfer) to the agent, a Python Phone that
plays a tone. She adds a second call to bob (another softphone), switches back, transfers
the agent and bob to each other, then starts a conference and invites bob, who joins with
his call on hold; she holds the conference and ends it. Who hears whom is measured at
each step (Goertzel on the Python side, an AnalyserNode in the pages), never inferred.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from ivrbot.serve import Runner
from ivrbot.testing.audio import sine
from tests.web.conftest import ARTIFACTS, MIC_HZ, fresh_page
from tests.web.test_softphone import PY_HZ, hears, open_softphone, page_level, party_level, silent
from tests.wire.test_calls import Party, login

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.serial,
]  # held rows and call times: alone, after the parallel run

AGENT = "agent@ivrbot.local"


@pytest.fixture
async def agent(bank: Runner) -> AsyncIterator[Party]:
    """agent@ivrbot.local: a Python Phone that answers every call and plays PY_HZ into it."""
    bank.server.gateway.switch.hold_audio = "silence"
    party = Party(bank.server.url, "agent")

    async def answer(data: Any) -> None:
        await party.phone.answer(remote_media=party.hear)

    def speak(data: Any) -> None:
        for call in party.phone.calls:
            call.play(sine(PY_HZ, 240.0, dbfs=-12.0))

    party.phone.on("call:incoming", answer)
    party.phone.on("call:connected", speak)
    await login(party, bank.server.url, "ACCOUNT_ID", AGENT)
    yield party
    await party.phone.close()


@pytest.fixture
async def bob_page(browser: Browser) -> AsyncIterator[Page]:
    async with fresh_page(browser, "bob") as page:
        yield page


async def row_state(page: Page, index: int, state: str) -> None:
    await page.wait_for_selector(f"#calls tr[data-index='{index}'] td.state:text-is('{state}')")


async def peer(page: Page, index: int) -> str:
    return await page.text_content(f"#calls tr[data-index='{index}'] td.peer") or ""


async def test_transfer_second_call_switch_and_conference(
    page: Page,
    bob_page: Page,
    bank: Runner,
    agent: Party,
) -> None:
    server = bank.server
    bob = bob_page
    await open_softphone(bob, server, "bob")
    await open_softphone(page, server, "alice")
    await page.wait_for_selector("#bots-panel:not([hidden])")
    assert await page.text_content("#bots button[data-flow=bank]") == "+1 (555) 000-1010"

    # the bank bot, from the list; '2' from the keyboard: the agent (a warm transfer)
    await page.click("#bots button[data-flow=bank]")
    await row_state(page, 1, "connected")
    assert await peer(page, 1) == "+1 (555) 000-1010"
    await page.locator("body").press("2")
    await page.wait_for_selector(f"#calls td.peer:text-is('{AGENT}')", timeout=30000)
    await hears("the agent hears alice", lambda: party_level(agent, MIC_HZ))
    await hears("alice hears the agent", lambda: page_level(page, PY_HZ))
    assert await page.evaluate("document.getElementById('level').value") > -40  # the meter
    assert (await page.text_content("#calls tr[data-index='1'] td.time") or "").startswith("0:")

    # a second call: the agent waits on hold while alice talks to bob
    await page.fill("#destination", "bob@ivrbot.local")
    await page.click("#add-call")
    await bob.wait_for_selector("#incoming:not([hidden])")
    assert await bob.text_content("#incoming-from") == "alice@ivrbot.local"
    await bob.click("#answer")
    await row_state(page, 2, "connected")
    await row_state(page, 1, "held")
    await hears("bob hears alice", lambda: page_level(bob, MIC_HZ))
    await silent("the held agent hears nothing", lambda: party_level(agent, MIC_HZ))

    await page.click("#switch")
    await row_state(page, 1, "connected")
    await row_state(page, 2, "held")
    await hears("switched: the agent hears alice again", lambda: party_level(agent, MIC_HZ))
    await silent("switched: bob, held, hears nothing", lambda: page_level(bob, MIC_HZ))

    # transfer: the agent and bob talk, alice has left both calls
    await page.click("#transfer")
    await page.wait_for_selector("#no-calls:not([hidden])")
    await hears("transferred: bob hears the agent", lambda: page_level(bob, PY_HZ))
    await hears("transferred: the agent hears bob", lambda: party_level(agent, MIC_HZ))
    assert await page.locator("#history li[data-outcome=transferred]").count() == 2

    # a conference: alice invites bob, who joins (his call with the agent goes on hold)
    await page.click("#conf-start")
    await page.wait_for_selector("#calls td.peer:text-is('conference (you host)')")
    await page.wait_for_selector("#calls td.state:text-is('connected')")
    await page.fill("#destination", "bob@ivrbot.local")
    await page.click("#conf-invite")
    await bob.wait_for_selector("#incoming-what:text-is('Conference invitation from')")
    await bob.click("#answer")
    await page.wait_for_selector("#participants li[data-status=joined]")
    assert await page.text_content("#participants li") == "bob@ivrbot.local: joined"
    await hears("in the conference, alice hears bob", lambda: page_level(page, MIC_HZ))
    await hears("in the conference, bob hears alice", lambda: page_level(bob, MIC_HZ))
    await silent("bob's call with the agent is on hold", lambda: party_level(agent, MIC_HZ))

    await page.click("#hold")
    await page.wait_for_selector("#calls td.state:text-is('held')")
    await silent("the conference on hold: alice hears nothing", lambda: page_level(page, MIC_HZ))
    await page.click("#hold")
    await hears("resumed: alice hears bob", lambda: page_level(page, MIC_HZ))
    await page.screenshot(path=str(ARTIFACTS / "softphone-conference.png"), full_page=True)

    await page.click("#conf-end")
    await page.wait_for_selector("#no-calls:not([hidden])")
    await bob.wait_for_selector("#calls td.peer:text-is('agent@ivrbot.local')")
    await hears(
        "the conference over: bob is back with the agent", lambda: party_level(agent, MIC_HZ)
    )
    assert await page.locator("#history li[data-outcome='conference ended']").count() == 1
