"""Headless Debian Chromium driven by Playwright, with a test tone as its microphone.

Playwright never downloads a browser here: it starts ``/usr/bin/chromium`` (``make setup``
installs it with apt-get) with the flags of docs/facts.md and a fresh profile per launch.
"""

from __future__ import annotations

import shutil
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from ivrbot.config import Settings
from ivrbot.serve import Runner
from ivrbot.testing.audio import sine
from ivrbot.wire.server import GatewayServer
from tests.wire.test_calls import Party, login

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"  # screenshots (not committed)
CHROMIUM = Path("/usr/bin/chromium")
MIC_HZ = 600.0  # the tone the browser's fake microphone plays (looped by Chromium)
PY_HZ = 1000.0  # the tone the Python side plays
BOT_NUMBER = "5550001000"  # the Python Phone of the bot fixture

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="session")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seconds of MIC_HZ at -12 dBFS, 48 kHz mono: a whole number of cycles, so the loop
    is seamless."""
    path = tmp_path_factory.mktemp("mic") / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(sine(MIC_HZ, 2.0, dbfs=-12.0).tobytes())
    return path


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"no {CHROMIUM}: `make setup` installs it (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="module")
async def browser(chromium: Path, mic_wav: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium),
            headless=True,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        yield browser
        await browser.close()


@asynccontextmanager
async def fresh_page(
    browser: Browser, name: str, log_selector: str = "#log", **context: Any
) -> AsyncIterator[Page]:
    """A page in a context of its own; a JavaScript exception in it fails the test. Its
    console and, at the end, the text of ``log_selector`` are printed (pytest shows them
    when a test fails)."""
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    page.set_default_timeout(15000)
    crashes: list[str] = []
    page.on("pageerror", lambda exc: crashes.append(str(exc)))
    page.on("console", lambda msg: print(f"[{name} {msg.type}] {msg.text}"))
    yield page
    if not page.is_closed() and await page.locator(log_selector).count():
        print(f"[{name} {log_selector}] {await page.text_content(log_selector)}")
    await ctx.close()
    assert crashes == [], f"uncaught JavaScript errors in the {name} page: {crashes}"


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh softphone page (its event log, newest first, is printed at the end)."""
    async with fresh_page(browser, "page") as page:
        yield page


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[Runner]:
    """``ivrbot run`` serving flows/bank.py (recordings under tmp_path)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    shutil.copy(ROOT / "flows" / "bank.py", flows / "bank.py")
    settings = Settings(port=0, db=str(tmp_path / "ivrbot.db"), recordings=tmp_path / "recordings")
    runner = Runner(flows, settings)
    await runner.start()
    yield runner
    await runner.stop()


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


@pytest.fixture
async def dashboard(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page for the dashboard (its message line printed at the end)."""
    viewport = {"width": 1280, "height": 1000}
    async with fresh_page(browser, "dashboard", "#message", viewport=viewport) as page:
        page.set_default_timeout(20000)
        yield page


async def log_in(page: Page, url: str, secret: str) -> None:
    """Log in to the dashboard at ``url`` with the gateway's client id and ``secret``."""
    await page.goto(f"{url}/dashboard")
    await page.wait_for_selector("body[data-ready=true]")
    await page.fill("#client-id", Settings().client_id)
    await page.fill("#client-secret", secret)
    await page.click("#login")


def stream_level_js(stream: str) -> str:
    """A page function ``async (freq) => dBFS``: the level of ``freq`` in the last ~0.7 s
    of the MediaStream the JavaScript expression ``stream`` gives (-120 without audio)."""
    return f"""async (freq) => {{
  const stream = {stream};
  if (!stream || !stream.getAudioTracks().length) return -120;
  const m = window.__meter || (window.__meter = {{ ctx: new AudioContext() }});
  await m.ctx.resume();
  if (m.stream !== stream) {{
    if (m.source) m.source.disconnect();
    m.source = m.ctx.createMediaStreamSource(stream);
    m.analyser = m.ctx.createAnalyser();
    m.analyser.fftSize = 32768;
    m.source.connect(m.analyser);
    m.stream = stream;
  }}
  const x = new Float32Array(m.analyser.fftSize);
  m.analyser.getFloatTimeDomainData(x);
  const w = 2 * Math.PI * freq / m.ctx.sampleRate;
  let re = 0, im = 0;
  for (let n = 0; n < x.length; n++) {{ re += x[n] * Math.cos(w * n); im -= x[n] * Math.sin(w * n); }}
  return 20 * Math.log10(Math.max(2 * Math.hypot(re, im) / x.length, 1e-6));
}}"""
