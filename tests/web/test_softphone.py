"""The softphone page in headless Chromium calls Python Phones through the gateway.

Audio is measured, never inferred from flags: the Python side measures the browser's
fake-microphone tone (Goertzel over the frames it received), and the page measures the
Python side's tone with an AnalyserNode on the call's remote stream (headless Chromium's
getStats reports audioLevel 0).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from playwright.async_api import Browser, Page

from ivrbot.errors import PhoneException
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.testing.audio import tone_dbfs
from ivrbot.wire.server import GatewayServer
from tests.web.conftest import BOT_NUMBER, MIC_HZ, PY_HZ, fresh_page, stream_level_js
from tests.wire.test_calls import Party

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

HEARD_DB = -32.0  # a tone arrives at about -12 to -16 dBFS
SILENT_DB = -50.0  # an absent one measures below -60

# The level (dBFS) of one frequency in the last ~0.7 s the page received on its current call.
METER_JS = stream_level_js("window.softphone.phone.currentCall?.remoteStream")


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
    assert await page.text_content("#incoming-from") == "+1 (555) 000-1000"
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


# Every event the page's Phone publishes from now on, in window.__events (name, error code).
RECORD_JS = """async () => {
  const { EVENTS } = await import('/static/phone.js');
  window.__events = [];
  for (const name of EVENTS) {
    window.softphone.phone.on(name, (p) => window.__events.push(name === 'error' ? `error ${p.ErrorCode}` : name));
  }
}"""


async def page_events(page: Page) -> list[str]:
    return list(await page.evaluate("window.__events"))


async def test_gateway_down_at_login_says_unreachable_not_error(
    page: Page, gateway: GatewayServer
) -> None:
    token = await fetch_token(gateway.url, "ACCOUNT_ID")
    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    await page.evaluate(RECORD_JS)
    await gateway.stop()
    await page.fill("#user", "alice")
    await page.click("summary")
    await page.fill("#token", token)
    await page.click("#login")
    message = page.locator("#message")
    await message.wait_for(state="visible")
    assert "Gateway unreachable" in (await message.text_content() or "")
    assert await page.text_content("#status") == "gateway unreachable"
    assert await page.is_visible("#login-panel")
    await page.wait_for_selector("#login:not([disabled])")  # login() has settled
    # gateway:unreachable instead of error; not logged in: no connectivity:off
    assert await page_events(page) == ["gateway:unreachable"]
    # without a token the page asks the (stopped) gateway for one and says so
    await page.fill("#token", "")
    await page.click("#login")
    await page.wait_for_selector("#message:has-text('Could not get a token')")


# The Phone's outcome of one call to `method` while the page's fetch is `fake` (JS source of
# an async (url, init) => Response): what it resolved to and the events published meanwhile.
FAKE_FETCH_JS = """async ([method, args, fake]) => {
  const phone = window.softphone.phone;
  const real = window.fetch;
  window.fetch = eval(fake);
  const mark = window.__events.length;
  try {
    const result = await phone[method](...args);
    return { result: result === undefined ? null : result, events: window.__events.slice(mark) };
  } finally {
    window.fetch = real;
  }
}"""


def crafted(status: int, message_id: str = "") -> str:
    """JS source of a fetch that answers every request with HTTP ``status`` (0: no answer at
    all, the gateway is down) and, with ``message_id``, a RequestError body."""
    if status == 0:
        return "async () => { throw new TypeError('Failed to fetch'); }"
    kind = "PolicyException" if message_id.startswith("POL") else "ServiceException"
    error = {"MessageId": message_id, "Text": "crafted", "Variables": ""}
    body = json.dumps({"RequestError": {kind: error}}) if message_id else "crafted"
    kind_header = "application/json" if message_id else "text/plain"
    return (
        f"async () => new Response({json.dumps(body)}, "
        f"{{ status: {status}, headers: {{ 'Content-Type': '{kind_header}' }} }})"
    )


# gateway reply to login's first request (PUT userIds) -> what the page's Phone publishes
LOGIN_REPLIES = [
    ((409, "SVC9999"), ["error 1000"]),  # unknown: 1000, not login's 2000
    ((500, "SVC9999"), ["error 1000"]),
    ((400, "SVC0002"), ["error 1002"]),
    ((401, "POL0001"), ["error 1711"]),
    ((404, "SVC8514"), ["error 1541"]),  # login's: token association, not session:expired
    ((404, ""), ["error 2000"]),  # a bare 404: the method's base code
    ((500, ""), ["error 500"]),
    ((504, ""), ["error 504"]),
    ((505, ""), ["error 505"]),
    ((502, ""), ["gateway:unreachable"]),
    ((503, ""), ["gateway:unreachable"]),
    ((0, ""), ["gateway:unreachable"]),  # no answer: not logged in, so no connectivity:off
]


async def test_gateway_replies_map_to_spec_codes_and_events(
    page: Page, gateway: GatewayServer
) -> None:
    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    await page.evaluate(RECORD_JS)
    login = [{"token": "t", "userId": "alice@ivrbot.local"}]
    outcomes = []
    for (status, message_id), _ in LOGIN_REPLIES:
        outcome = await page.evaluate(FAKE_FETCH_JS, ["login", login, crafted(status, message_id)])
        outcomes.append(outcome["events"])
        assert outcome["result"] is None
    assert outcomes == [events for _, events in LOGIN_REPLIES]
    assert not await page.evaluate("window.softphone.phone.loggedIn")
    # the error object carries the gateway's answer
    error = await page.evaluate(
        """async (fake) => {
          const { Phone } = await import('/static/phone.js');
          const p = new Phone();
          let error = null;
          p.on('error', (e) => { error = e; });
          const real = window.fetch;
          window.fetch = eval(fake);
          try { await p.login({ token: 't' }); } finally { window.fetch = real; }
          return error;
        }""",
        crafted(409, "SVC9999"),
    )
    assert error["ErrorCode"] == "1000" and error["JSMethod"] == "login"
    assert (error["HttpStatusCode"], error["MessageId"], error["APIError"]) == (
        409,
        "SVC9999",
        "crafted",
    )


# hold() on the page's Phone: what it resolved to and the events published meanwhile
HOLD_JS = """async () => {
  const mark = window.__events.length;
  const result = await window.softphone.phone.hold();
  return [result === undefined ? null : result, window.__events.slice(mark)];
}"""


async def test_a_session_the_gateway_forgot_is_expired_not_an_error(
    page: Page, gateway: GatewayServer, bot: Party
) -> None:
    await browser_calls_bot(page, gateway, bot)
    await page.evaluate(RECORD_JS)
    session = next(s for s in gateway.gateway.sessions if s.user_id == "alice@ivrbot.local")
    # the gateway forgets the session (its channel closes); the page's next request (hold)
    # gets 404 SVC8514 before the channel's reconnection (a second later) finds out. Its
    # call ends afterwards: ending it first would tell the page over the channel.
    gateway.gateway.sessions.remove(session.id)
    outcome, events = await page.evaluate(HOLD_JS)
    await gateway.gateway.switch.end_session(session)
    assert outcome is None
    assert "session:expired" in events and "call:held" not in events  # published by hold()
    assert not [e for e in events if e.startswith("error")], events
    await page.wait_for_selector("#message:has-text('The session expired')")
    # the channel's reconnection finds the session gone: logged out, the call is over
    await page.wait_for_selector("#login-panel:not([hidden])")
    assert await page.evaluate("window.softphone.phone.calls.length") == 0
    assert not [e for e in await page_events(page) if e.startswith("error")]
    # and the user can log in again
    await page.click("#login")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    assert await page.text_content("#status") == "logged in"


# A call the gateway no longer has (the session is fine): the page's Phone still thinks it is
# connected (or ringing out) and acts on it.
GHOST_CALL_JS = """(state) => {
  const phone = window.softphone.phone;
  const call = phone._newCall('outgoing', 'sip:ghost@ivrbot.local');
  call.id = 'no-such-call';
  call.state = state;
  phone.foreground = call;
}"""


async def test_a_bare_404_on_a_call_fails_with_the_methods_base_code(
    page: Page, gateway: GatewayServer
) -> None:
    await open_softphone(page, gateway, "alice")
    await page.wait_for_selector("#phone-panel:not([hidden])")
    await page.evaluate(RECORD_JS)
    await page.evaluate(GHOST_CALL_JS, "connected")
    await page.evaluate("window.softphone.phone.hold()")  # the real gateway: a bare 404
    await page.evaluate(GHOST_CALL_JS, "connecting")
    await page.evaluate("window.softphone.phone.cancel()")
    assert await page_events(page) == ["error 2500", "error 2900"]
    assert "Error 2900 in cancel" in (await page.text_content("#message") or "")
    assert await page.evaluate("window.softphone.phone.loggedIn")
    # logged in, the gateway stops answering: gateway:unreachable and offline, no error
    await page.evaluate(GHOST_CALL_JS, "connected")
    outcome = await page.evaluate(FAKE_FETCH_JS, ["hold", [], crafted(0)])
    assert outcome == {"result": None, "events": ["connectivity:off", "gateway:unreachable"]}
    assert await page.text_content("#status") == "gateway unreachable"
    assert "Gateway unreachable" in (await page.text_content("#message") or "")


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


async def test_move_rings_my_other_softphone_which_takes_the_call(
    page: Page, browser: Browser, gateway: GatewayServer, bot: Party
) -> None:
    async with fresh_page(browser, "second alice") as other:
        await open_softphone(other, gateway, "alice")  # the same person, another device
        await other.wait_for_selector("#phone-panel:not([hidden])")
        await browser_calls_bot(page, gateway, bot)
        await page.click("#move")
        await other.wait_for_selector("#incoming:not([hidden])")
        await other.click("#answer")
        await call_state(other, "connected")
        await page.wait_for_selector("#no-calls:not([hidden])")
        assert await page.locator("#history li[data-outcome=moved]").count() == 1
        await hears("the bot hears the second softphone", lambda: party_level(bot, MIC_HZ))
        await hears("the second softphone hears the bot", lambda: page_level(other, PY_HZ))
        await other.click("#hangup")
        await bot.wait("call:disconnected")


# The spec's two-call and conference methods, logged out, on the browser SDK...
MORE_MISTAKES_JS = """async () => {
  const { Phone } = await import('/static/phone.js');
  const p = new Phone();
  const codes = [];
  p.on('error', (e) => codes.push(e.ErrorCode));
  await p.move(); await p.switchCall(); await p.transfer(); await p.upgrade();
  await p.downgrade(); await p.acceptModification(); await p.rejectModification();
  await p.addCall(); await p.addCall({ destination: 'tel:+1' });
  await p.addCall({ destination: 'a@b@c' });
  await p.addCall({ destination: '5550001000', mediaType: 'fax' });
  await p.addCall({ destination: '5550001000' });
  await p.startConference({ mediaType: 'fax' }); await p.startConference({ mediaType: 'audio' });
  await p.addParticipant(''); await p.addParticipant('sip:x'); await p.addParticipant('a@b@c');
  await p.addParticipant('bob@ivrbot.local');
  await p.removeParticipant(''); await p.removeParticipant('bob');
  p.getParticipants();
  await p.joinConference({}); await p.rejectConference(); await p.endConference();
  return codes;
}"""


async def test_call_and_conference_codes_match_the_python_phone(
    page: Page, gateway: GatewayServer
) -> None:
    """... and on the Python Phone: the same codes in the same order."""
    phone = Phone(gateway.url)
    mistakes: list[Callable[[], Any]] = [
        phone.move, phone.switch_call, phone.transfer, phone.upgrade, phone.downgrade,
        phone.accept_modification, phone.reject_modification,
        lambda: phone.add_call(), lambda: phone.add_call("tel:+1"),
        lambda: phone.add_call("a@b@c"), lambda: phone.add_call("5550001000", media_type="fax"),
        lambda: phone.add_call("5550001000"),
        lambda: phone.start_conference(media_type="fax"), lambda: phone.start_conference(),
        lambda: phone.add_participant(""), lambda: phone.add_participant("sip:x"),
        lambda: phone.add_participant("a@b@c"), lambda: phone.add_participant("bob@ivrbot.local"),
        lambda: phone.remove_participant(""), lambda: phone.remove_participant("bob"),
        phone.get_participants,
        lambda: phone.join_conference(), phone.reject_conference, phone.end_conference,
    ]  # fmt: skip
    python_codes = []
    for mistake in mistakes:
        with pytest.raises(PhoneException) as caught:
            result = mistake()
            if inspect.isawaitable(result):
                await result
        python_codes.append(caught.value.error.error_code)
    await phone.close()

    await page.goto(f"{gateway.url}/softphone")
    await page.wait_for_selector("body[data-ready=true]")
    assert await page.evaluate(MORE_MISTAKES_JS) == python_codes
    assert python_codes[:3] == ["4001", "4201", "4101"]


async def test_video_upgrade_both_ways(page: Page, gateway: GatewayServer, bot: Party) -> None:
    """The page asks for video and the Python side accepts (audio goes on); then the Python
    side asks for audio only and the page's user declines, then asks again and the user
    accepts. (The media type is negotiated; the page sends no camera picture.)"""
    await browser_calls_bot(page, gateway, bot)
    await page.click("#upgrade")
    await bot.wait("call:modification-in-progress")
    await bot.phone.accept_modification()
    await page.wait_for_selector("#downgrade:not([disabled])")
    assert await page.evaluate("window.softphone.phone.getMediaType()") == "video"
    assert await page.is_disabled("#upgrade")
    await hears("upgraded: the bot still hears the browser", lambda: party_level(bot, MIC_HZ))
    await hears("upgraded: the browser still hears the bot", lambda: page_level(page, PY_HZ))

    for answer, media in (("#reject-mod", "video"), ("#accept-mod", "audio")):
        await bot.phone.downgrade()
        await page.wait_for_selector("#modification-to:text-is('audio')")
        await page.click(answer)
        await page.wait_for_selector("#modification", state="hidden")
        settled = await bot.wait("call:media-modification", 2 if media == "video" else 3)
        assert settled[-1].get("newMediaType") == media
        assert await page.evaluate("window.softphone.phone.getMediaType()") == media
    # the gateway's own offers (the Python side's downgrades) kept the call's audio
    await hears("downgraded: the bot hears the browser", lambda: party_level(bot, MIC_HZ))
    await hears("downgraded: the browser hears the bot", lambda: page_level(page, PY_HZ))
