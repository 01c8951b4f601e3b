"""The dashboard in headless Chromium follows a softphone's call through the bank flow.

A softphone page calls the bank bot (``ivrbot run``'s Runner on 127.0.0.1), keys its way
through the menu and leaves a voicemail (the browser's fake-microphone tone); a dashboard page
logged in with the gateway's client credentials shows the call on each step as it happens
(table and flow graph), then its record, whose recording the page plays: decoded in the
page, it holds the caller's tone; a campaign created in the server's store then appears in
the campaigns panel. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from playwright.async_api import Page

from ivrbot.campaign.campaign import load_campaign_file
from ivrbot.campaign.contacts import read_contacts
from ivrbot.config import Settings
from ivrbot.flow.media_steps import BEEP_HZ
from ivrbot.serve import Runner
from ivrbot.wire.server import GatewayServer
from tests.web.conftest import ARTIFACTS, MIC_HZ, ROOT, log_in
from tests.web.test_softphone import call_state, open_softphone, page_level

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

BANK = "5550001010"

# Duration (s) of the page's audio element's file and the level (dBFS) of `freq` in it,
# decoded by the page (what a user playing it hears).
RECORDING_JS = """async ([selector, freq]) => {
  const audio = document.querySelector(selector);
  const data = await (await fetch(audio.src)).arrayBuffer();
  const ctx = new OfflineAudioContext(1, 1, 16000);
  const buffer = await ctx.decodeAudioData(data);
  const x = buffer.getChannelData(0);
  const w = 2 * Math.PI * freq / buffer.sampleRate;
  let best = -120;
  const n = Math.min(x.length, buffer.sampleRate / 2);
  for (let start = 0; start + n <= x.length; start += n) {  // the loudest half second
    let re = 0, im = 0;
    for (let i = 0; i < n; i++) { re += x[start + i] * Math.cos(w * i); im -= x[start + i] * Math.sin(w * i); }
    best = Math.max(best, 20 * Math.log10(Math.max(2 * Math.hypot(re, im) / n, 1e-6)));
  }
  return [buffer.duration, best];
}"""


# The records API as the page reads it (the operator's token)
RECORDS_JS = """async () => {
  const resp = await fetch('/ivrbot/records', { headers: { Authorization: `Bearer ${window.dashboard.token}` } });
  return (await resp.json()).records;
}"""


async def live_step(page: Page, step: str) -> None:
    """The dashboard shows the call on ``step``, in the table and in the flow graph."""
    await page.wait_for_selector(f"#calls td.step:text-is('{step}')")
    await page.wait_for_selector(f"#graph g.node.current#step-{step}")
    assert await page.locator("#graph g.node.current").count() == 1


async def press(page: Page, keys: str) -> None:
    for key in keys:
        await page.click(f"#keypad button[data-key='{key}']")


async def test_dashboard_follows_a_call_then_plays_its_recording(
    page: Page, dashboard: Page, bank: Runner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ivrbot.calls")
    caplog.set_level(logging.INFO, logger="ivrbot.media.recorder")
    url = bank.server.url
    ARTIFACTS.mkdir(exist_ok=True)
    await log_in(dashboard, url, "wrong secret")
    await dashboard.wait_for_selector("#message:has-text('refused these credentials')")
    assert await dashboard.is_hidden("#board")
    await log_in(dashboard, url, Settings().client_secret)
    await dashboard.wait_for_selector("#status:text-is('live')")
    bot_row = dashboard.locator("#bots tbody tr[data-flow=bank]")
    assert await bot_row.locator(".numbers").text_content() == "+1 (555) 000-1010"
    assert await dashboard.locator("#legend li").count() >= 5  # the flow's kinds of step
    assert await dashboard.is_hidden("#campaigns-panel")  # no campaign yet

    await open_softphone(page, bank.server, "alice")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await page.fill("#destination", BANK)
    await page.click("#dial")
    await call_state(page, "connected")
    await page.click("#mute")  # quiet until the voicemail's beep: no words for the menu
    await live_step(dashboard, "menu")
    assert await dashboard.locator("#calls tbody tr").count() == 1  # the bot's, not twice
    row = dashboard.locator("#calls tbody tr").first
    assert await row.locator(".party.from").text_content() == "fromalice@ivrbot.local"
    assert await row.locator(".party.to").text_content() == "to+1 (555) 000-1010"

    await press(page, "1")
    await live_step(dashboard, "account")
    await press(page, "123456#")
    await live_step(dashboard, "more")
    # the account number (secret) is shown as the log writes it: live, in the feed, on record
    assert "account: <6 digits>" in (await row.text_content() or "")
    logged = [r.fields["value"] for r in caplog.records if getattr(r, "fields", {}).get("event")
              == "input" and r.fields.get("step") == "account"]  # fmt: skip
    assert logged == ["<6 digits>"]
    fed = await dashboard.evaluate("() => window.dashboard.board.calls[0].inputs")  # WebSocket
    assert [i["value"] for i in fed] == ["1", "<6 digits>"]
    on_record = await dashboard.evaluate(RECORDS_JS)
    assert [i["value"] for i in on_record[0]["inputs"]] == ["1", "<6 digits>"]
    assert "123456" not in (await dashboard.text_content("body") or "")
    record = dashboard.locator("#records tbody tr").first  # on record as it happens
    await record.locator("td.outcome:text-is('in-progress')").wait_for()
    assert (await record.locator("td.path").text_content() or "").endswith("balance → more")
    await dashboard.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    await page.screenshot(path=str(ARTIFACTS / "softphone-bank.png"), full_page=True)

    await press(page, "2")  # an agent: nobody answers as agent@ivrbot.local -> voicemail
    await live_step(dashboard, "voicemail")
    async with asyncio.timeout(20):  # "... after the tone": the caller hears the beep
        while await page_level(page, BEEP_HZ) < -30.0:
            await asyncio.sleep(0.1)
        # and speaks once the bot records (the level at the beep's pitch can rise early, in
        # the prompt's own words: speaking then went unrecorded, 1 run in 4)
        while not any("-> recording" in r.getMessage() for r in caplog.records
                      if r.name == "ivrbot.media.recorder"):  # fmt: skip
            await asyncio.sleep(0.05)
    await page.click("#mute")  # and speaks (the microphone's tone), then presses #
    await asyncio.sleep(2.0)
    await press(page, "#")
    await page.wait_for_selector("#no-calls:not([hidden])")  # the bot said goodbye, hung up
    await dashboard.wait_for_selector("#no-calls:not([hidden])")

    await record.locator("td.outcome:text-is('completed')").wait_for()
    path = await record.locator("td.path").text_content() or ""
    assert path.startswith("defaults → menu → account → balance → more → agent → voicemail")
    inputs = await record.locator("td.inputs").text_content() or ""
    assert "account: <6 digits>" in inputs
    assert "-voicemail.wav" in inputs and "/" not in inputs  # the file's name, not its path
    await record.locator("td.recordings button").click()
    await record.locator("audio").wait_for()
    seconds, level = await dashboard.evaluate(RECORDING_JS, ["#records audio", MIC_HZ])
    assert seconds > 0.5, f"a {seconds:.2f} s recording"
    assert level > -35.0, f"the caller's tone is at {level:.1f} dBFS in the recording"
    await dashboard.screenshot(path=str(ARTIFACTS / "dashboard-record.png"), full_page=True)

    assert (await dashboard.evaluate(RECORDS_JS))[0]["inputs"][1]["value"] == "<6 digits>"
    await dashboard.fill("#search", "voicemail")
    await dashboard.wait_for_selector("#records tbody tr td.path")
    await dashboard.fill("#search", "123456")  # a secret is not found by searching for it
    await dashboard.wait_for_selector("#no-records:not([hidden])")

    # a campaign created in the running server's store appears in the panel (it polls)
    spec = load_campaign_file(ROOT / "campaigns" / "reminder.py")
    people = read_contacts(ROOT / "campaigns" / "reminder_contacts.csv", spec.default_region)
    store = bank.campaigns.store  # type: ignore[union-attr]
    await store.run(store.create, spec, people.contacts)
    cells = dashboard.locator("#campaigns tbody tr").first.locator("td")
    await cells.first.wait_for()
    shown = await cells.all_text_contents()
    assert shown[:3] == [spec.name, "reminder", "created"]
    assert shown[3].strip().endswith(f"0 / {len(people.contacts)}")


CAMPAIGNS_JS = """async () => {
  const { drawCampaigns } = await import('/static/campaigns.js');
  const box = document.createElement('div');
  document.body.append(box);
  drawCampaigns(box, [{ name: 'reminders', flow: 'reminder', state: 'running', total: 100,
    done: 40, in_progress: 10, outcomes: { completed: 30, 'no-answer': 10 }, abandon_ratio: 0.025 },
    { name: 'renewals', flow: 'reminder', state: 'done', total: 4, done: 4, in_progress: 0,
    outcomes: { 'no-answer': 1, busy: 2, 'left-early': 1 }, abandon_ratio: 0 }]);
  const row = box.querySelector('tbody tr');
  const bars = [...row.querySelectorAll('svg')].map((svg) =>
    [...svg.querySelectorAll('rect')].map((r) => Number(r.getAttribute('width'))));
  const fills = [...box.querySelectorAll('tbody td:nth-child(5) rect')].map((r) =>
    [r.dataset.part, r.getAttribute('fill')]);
  const legend = (id) => [...box.querySelectorAll(`#${id} li`)].map((li) =>
    [li.textContent, li.querySelector('i').style.background]);
  return { text: [...row.cells].map((c) => c.textContent), bars, fills,
    outcomes: legend('outcome-legend'), progress: legend('progress-legend') };
}"""


def css_rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


async def test_campaigns_panel_draws_progress_and_outcomes(
    page: Page, gateway: GatewayServer
) -> None:
    await page.goto(f"{gateway.url}/dashboard")
    shown = await page.evaluate(CAMPAIGNS_JS)
    assert shown["text"][:3] == ["reminders", "reminder", "running"]
    assert shown["text"][3].endswith("40 / 100") and shown["text"][5] == "2.5%"
    assert shown["bars"] == [[96, 24], [180, 60]]  # 240 px: 40 % done + 10 % in progress; 3:1
    # one colour per outcome in every row, and a legend naming each outcome shown
    colours = dict(shown["fills"])
    assert len(shown["fills"]) == 5 and len({tuple(f) for f in shown["fills"]}) == 4
    assert len(set(colours.values())) == 4  # and no two outcomes alike
    assert shown["outcomes"] == [
        [name, css_rgb(colours[name])] for name in ("busy", "completed", "left-early", "no-answer")
    ]
    assert [name for name, _ in shown["progress"]] == ["done", "in progress"]
    await page.screenshot(path=str(ARTIFACTS / "campaigns-legend.png"))
