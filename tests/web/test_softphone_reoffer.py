"""The gateway's own offer to a browser (issue 15): a media change the far side asks for.

The browser calls a Python Phone (so the browser's offer set the RTP numbering of its leg:
Chromium's payload types and header extension ids, which are not aiortc's), or the Python
Phone calls the browser (the gateway's offer set it, and the gateway is the DTLS server).
When the Python side upgrades to video, downgrades back or holds and resumes, the gateway
sends the browser a new offer of the browser's own leg. Audio must go on both ways after
each change: measured on the Python side (Goertzel at the browser's microphone tone) and in
the page (an AnalyserNode at the Python side's tone), never inferred from states; and the
new offers keep the leg's numbering, ICE credentials, fingerprint and DTLS role.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from ivrbot.wire.server import GatewayServer
from tests.web.conftest import MIC_HZ, PY_HZ
from tests.web.test_softphone import (
    browser_calls_bot,
    call_state,
    hears,
    open_softphone,
    page_level,
    party_level,
    silent,
)
from tests.wire.test_calls import Party

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

# The RTP numbering of the browser's leg as the browser sees it: every m= line's payload
# types and every a=extmap (id and URI) of its current remote description.
NUMBERING_JS = """() => {
  const sdp = window.softphone.phone.currentCall.pc.remoteDescription.sdp;
  return sdp.split(/\\r?\\n/).filter((l) => /^(m=|a=extmap:|a=mid:|a=setup:|a=ice-ufrag:|a=fingerprint:)/.test(l));
}"""


def numbering(lines: list[str]) -> list[str]:
    """The lines of NUMBERING_JS but ``a=setup``, in an order that means nothing (the
    payload types of an m= line, a=extmap lines)."""
    out = []
    for line in lines:
        if line.startswith("m="):
            head = line.split()[:3]
            line = " ".join([*head, *sorted(line.split()[3:], key=int)])
        if not line.startswith("a=setup"):
            out.append(line)
    return sorted(out)


async def both_hear(page: Page, bot: Party, when: str) -> None:
    await hears(f"{when}: the bot hears the browser", lambda: party_level(bot, MIC_HZ))
    await hears(f"{when}: the browser hears the bot", lambda: page_level(page, PY_HZ))


async def accept_in_page(page: Page, bot: Party, media: str, count: int) -> None:
    """The page shows the far side's request; its user accepts; both sides settle."""
    await page.wait_for_selector(f"#modification-to:text-is('{media}')")
    await page.click("#accept-mod")
    await page.wait_for_selector("#modification", state="hidden")
    settled = await bot.wait("call:media-modification", count)
    assert settled[-1].get("newMediaType") == media
    assert await page.evaluate("window.softphone.phone.getMediaType()") == media


async def bot_calls_browser(page: Page, gateway: GatewayServer, bot: Party) -> None:
    await open_softphone(page, gateway, "bob")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await bot.phone.dial("bob@ivrbot.local", remote_media=bot.hear)
    await page.click("#answer")
    await bot.wait("call:connected")
    await call_state(page, "connected")


@pytest.mark.parametrize("caller", ["browser", "bot"])
async def test_far_side_media_changes_keep_audio_both_ways(
    page: Page, gateway: GatewayServer, bot: Party, caller: str
) -> None:
    gateway.gateway.switch.hold_audio = "silence"
    if caller == "browser":
        await browser_calls_bot(page, gateway, bot)
    else:
        await bot_calls_browser(page, gateway, bot)
    await both_hear(page, bot, "connected")
    before = await page.evaluate(NUMBERING_JS)  # the gateway's answer, or its first offer

    await bot.phone.upgrade()  # the gateway re-offers the browser's leg
    await accept_in_page(page, bot, "video", 1)
    await both_hear(page, bot, "upgraded by the far side")

    await bot.phone.downgrade()
    await accept_in_page(page, bot, "audio", 2)
    await both_hear(page, bot, "downgraded by the far side")
    # the gateway's offers kept what was negotiated (RFC 3264 section 8): mids, payload
    # types, header extension ids, ICE credentials, DTLS fingerprint; and they state the
    # settled DTLS role (the gateway answered 'active'; it offered 'actpass', bob's answer
    # made it the server: 'passive')
    after = await page.evaluate(NUMBERING_JS)
    role = "a=setup:active" if caller == "browser" else "a=setup:passive"
    assert [line for line in after if line.startswith("a=setup")] == [role]
    assert numbering(after) == numbering(before)

    await bot.phone.hold()
    await silent("held by the far side: the bot hears nothing", lambda: party_level(bot, MIC_HZ))
    await bot.phone.resume()
    await call_state(page, "connected")
    await both_hear(page, bot, "resumed by the far side")
