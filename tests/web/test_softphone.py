"""The softphone page in headless Chromium calls Python Phones through the gateway.

Audio is measured, never inferred from flags: the Python side measures the browser's
fake-microphone tone (Goertzel over the frames it received), and the page measures the
Python side's tone with an AnalyserNode on the call's remote stream (headless Chromium's
getStats reports audioLevel 0).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np
import pytest
from playwright.async_api import Page

from ivrbot.errors import PhoneException
from ivrbot.gateway.server import GatewayServer
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from tests.audio_checks import sine, tone_dbfs
from tests.gateway.test_calls import Party, login
from tests.web.conftest import MIC_HZ

PY_HZ = 1000.0  # the tone the Python side plays
HEARD_DB = -32.0  # a tone arrives at about -12 to -16 dBFS
SILENT_DB = -50.0  # an absent one measures below -60
BOT_NUMBER = "5550001000"

# The level (dBFS) of one frequency in the last ~0.7 s the page received on its current call.
METER_JS = """async (freq) => {
  const call = window.softphone.phone.currentCall;
  if (!call) return -120;
  const m = window.__meter || (window.__meter = { ctx: new AudioContext() });
  await m.ctx.resume();
  if (m.stream !== call.remoteStream) {
    if (m.source) m.source.disconnect();
    m.source = m.ctx.createMediaStreamSource(call.remoteStream);
    m.analyser = m.ctx.createAnalyser();
    m.analyser.fftSize = 32768;
    m.source.connect(m.analyser);
    m.stream = call.remoteStream;
  }
  const x = new Float32Array(m.analyser.fftSize);
  m.analyser.getFloatTimeDomainData(x);
  const w = 2 * Math.PI * freq / m.ctx.sampleRate;
  let re = 0, im = 0;
  for (let n = 0; n < x.length; n++) { re += x[n] * Math.cos(w * n); im -= x[n] * Math.sin(w * n); }
  return 20 * Math.log10(Math.max(2 * Math.hypot(re, im) / x.length, 1e-6));
}"""


async def page_level(page: Page, freq: float) -> float:
    return float(await page.evaluate(METER_JS, freq))


async def party_level(party: Party, freq: float, seconds: float = 0.6) -> float:
    """The level of ``freq`` in what ``party`` receives over the next ``seconds`` (-120 when
    no frame arrives: nothing is sent to it)."""
    mark = len(party.heard)
    await asyncio.sleep(seconds)
    frames = party.heard[mark:]
    return tone_dbfs(np.concatenate(frames), freq) if frames else -120.0


async def until(
    what: str,
    probe: Callable[[], Awaitable[float]],
    ok: Callable[[float], bool],
    timeout: float = 10.0,
) -> None:
    """Measure until ``ok`` holds (media on a loaded machine takes its time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        db = await probe()
        if ok(db):
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: still {db:.1f} dBFS after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def hears(what: str, probe: Callable[[], Awaitable[float]]) -> None:
    await until(what, probe, lambda db: db > HEARD_DB)


async def silent(what: str, probe: Callable[[], Awaitable[float]]) -> None:
    await until(what, probe, lambda db: db < SILENT_DB)


async def open_softphone(page: Page, gateway: GatewayServer, user: str, token: str = "") -> None:
    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    await page.fill("#user", user)
    if token:
        await page.click("summary")
        await page.fill("#token", token)
    await page.click("#login")


async def call_state(page: Page, state: str) -> None:
    await page.wait_for_selector(f"#calls td.state:text-is('{state}')")


@pytest.fixture
async def bot(gateway: GatewayServer) -> AsyncIterator[Party]:
    """A Python Phone on a virtual number that plays PY_HZ into every call it connects."""
    party = Party(gateway.url, "bot")

    def speak(data: object) -> None:
        for call in party.phone.calls:
            call.play(sine(PY_HZ, 120.0, dbfs=-12.0))

    party.phone.on("call:connected", speak)
    await login(party, gateway.url, "VIRTUAL_NUMBER", f"vtn:{BOT_NUMBER}")
    yield party
    await party.phone.close()


async def browser_calls_bot(page: Page, gateway: GatewayServer, bot: Party) -> None:
    await open_softphone(page, gateway, "alice")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await page.fill("#destination", BOT_NUMBER)
    await page.click("#dial")
    await bot.wait("call:incoming")
    assert bot.events["call:incoming"][0]["from"] == "sip:alice@ivrbot.local"
    await bot.phone.answer(remote_media=bot.hear)
    await bot.wait("call:connected")
    await call_state(page, "connected")


async def test_browser_calls_a_python_phone_hold_resume_mute(
    page: Page, gateway: GatewayServer, bot: Party
) -> None:
    gateway.gateway.switch.hold_audio = "silence"
    await browser_calls_bot(page, gateway, bot)
    await hears("the bot hears the browser's microphone", lambda: party_level(bot, MIC_HZ))
    await hears("the browser hears the bot", lambda: page_level(page, PY_HZ))
    assert await party_level(bot, PY_HZ) < SILENT_DB, "the bot hears its own tone"
    assert await page_level(page, MIC_HZ) < SILENT_DB, "the browser hears its own tone"

    await page.click("#hold")
    await call_state(page, "held")
    assert await page.text_content("#hold") == "Resume"
    await silent("on hold the bot hears nothing", lambda: party_level(bot, MIC_HZ))
    await silent("on hold the browser hears nothing", lambda: page_level(page, PY_HZ))

    await page.click("#hold")
    await call_state(page, "connected")
    await hears("resumed: the bot hears the browser", lambda: party_level(bot, MIC_HZ))
    await hears("resumed: the browser hears the bot", lambda: page_level(page, PY_HZ))

    await page.click("#mute")
    await page.wait_for_selector("#mute:text-is('Unmute')")
    await silent("muted: the bot hears nothing", lambda: party_level(bot, MIC_HZ))
    assert await page_level(page, PY_HZ) > HEARD_DB, "muting also silenced the far end"
    await page.click("#mute")
    await hears("unmuted: the bot hears the browser", lambda: party_level(bot, MIC_HZ))

    await page.click("#hangup")
    ended = await bot.wait("call:disconnected")
    assert ended[0].get("message") == "Call terminated"
    await page.wait_for_selector("#no-calls:not([hidden])")
    assert gateway.gateway.switch.calls == {}


async def test_python_phone_calls_the_browser_which_answers(
    page: Page, gateway: GatewayServer, bot: Party
) -> None:
    await open_softphone(page, gateway, "bob")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await bot.phone.dial("bob@ivrbot.local", remote_media=bot.hear)
    await page.wait_for_selector("#incoming:not([hidden])")
    assert await page.text_content("#incoming-from") == f"tel:+1{BOT_NUMBER}"
    await call_state(page, "created")
    await page.click("#answer")
    await bot.wait("call:connected")
    await call_state(page, "connected")
    await hears("the bot hears the browser", lambda: party_level(bot, MIC_HZ))
    await hears("the browser hears the bot", lambda: page_level(page, PY_HZ))

    await bot.phone.hangup()
    await page.wait_for_selector("#no-calls:not([hidden])")
    log = await page.text_content("#log")
    assert log is not None and "call:disconnected" in log


async def test_the_browser_rejects_a_call(page: Page, gateway: GatewayServer, bot: Party) -> None:
    await open_softphone(page, gateway, "bob")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await bot.phone.dial("bob@ivrbot.local", remote_media=bot.hear)
    await page.wait_for_selector("#incoming:not([hidden])")
    await page.click("#reject")
    rejected = await bot.wait("call:rejected")
    assert rejected[0].get("message") == "User busy"
    await page.wait_for_selector("#incoming", state="hidden")


async def test_keypad_digits_reach_the_python_phone(
    page: Page, gateway: GatewayServer, bot: Party
) -> None:
    await browser_calls_bot(page, gateway, bot)
    await page.click("#keypad button[data-key='5']")
    await bot.wait("dtmf:tone-received", 1)
    await page.click("#keypad button[data-key='#']")
    received = await bot.wait("dtmf:tone-received", 2)
    assert [e.get("tone") for e in received] == ["5", "#"]
    assert {e.get("method") for e in received} == {"rfc4733"}
    log = await page.text_content("#log")
    assert log is not None and "dtmf:tone-sent" in log


async def test_a_bad_token_shows_the_spec_error(page: Page, gateway: GatewayServer) -> None:
    await open_softphone(page, gateway, "alice", token="not-a-token")
    message = page.locator("#message")
    await message.wait_for(state="visible")
    assert "Error 1711 in login" in (await message.text_content() or "")
    assert await page.is_visible("#login-panel")


async def test_gateway_down_shows_the_spec_error(page: Page, gateway: GatewayServer) -> None:
    token = await fetch_token(gateway.url, "ACCOUNT_ID")
    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    await gateway.stop()
    await page.fill("#user", "alice")
    await page.click("summary")
    await page.fill("#token", token)
    await page.click("#login")
    message = page.locator("#message")
    await message.wait_for(state="visible")
    assert "Error 2000 in login" in (await message.text_content() or "")
    assert await page.text_content("#status") == "gateway unreachable"
    # without a token the page asks the (stopped) gateway for one and says so
    await page.fill("#token", "")
    await page.click("#login")
    await page.wait_for_selector("#message:has-text('Could not get a token')")


# The same caller mistakes, made on the browser SDK and on the Python Phone (logged out).
MISTAKES_JS = """async () => {
  const { Phone } = await import('/static/phone.js');
  const p = new Phone();
  const codes = [];
  p.on('error', (e) => codes.push(e.ErrorCode));
  await p.login();
  await p.login({ userId: 'a@ivrbot.local' });
  await p.dial();
  await p.dial({ destination: ' ' });
  await p.dial({ destination: 'sip:a@b' });
  await p.dial({ destination: 'a@b@c' });
  await p.dial({ destination: 'alice', mediaType: 'fax' });
  await p.dial({ destination: '5550001000' });
  await p.answer({});
  await p.hangup();
  await p.reject();
  await p.hold();
  await p.resume();
  await p.mute();
  await p.unmute();
  await p.sendDTMFTone({ input: 'x' });
  await p.sendDTMFTone({ input: '1', gap: 10 });
  await p.sendDTMFTone({ input: '1' });
  await p.logout();
  p.on('call:nope', () => {});
  return codes;
}"""


async def test_validation_codes_match_the_python_phone(page: Page, gateway: GatewayServer) -> None:
    phone = Phone(gateway.url)
    mistakes: list[Callable[[], Awaitable[object]]] = [
        lambda: phone.login(),
        lambda: phone.login(user_id="a@ivrbot.local"),
        lambda: phone.dial(),
        lambda: phone.dial(" "),
        lambda: phone.dial("sip:a@b"),
        lambda: phone.dial("a@b@c"),
        lambda: phone.dial("alice", media_type="fax"),
        lambda: phone.dial("5550001000"),
        lambda: phone.answer(),
        phone.hangup,
        phone.reject,
        phone.hold,
        phone.resume,
        phone.mute,
        phone.unmute,
        lambda: phone.send_dtmf_tone("x"),
        lambda: phone.send_dtmf_tone("1", gap=10),
        lambda: phone.send_dtmf_tone("1"),
        phone.logout,
    ]
    python_codes = []
    for mistake in mistakes:
        with pytest.raises(PhoneException) as caught:
            await mistake()
        python_codes.append(caught.value.error.error_code)
    with pytest.raises(PhoneException) as caught:
        phone.on("call:nope", print)
    python_codes.append(caught.value.error.error_code)
    await phone.close()

    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    js_codes = await page.evaluate(MISTAKES_JS)
    assert js_codes == python_codes
    assert js_codes[:3] == ["2001", "2002", "2201"]
