"""The dashboard's flow picture and call parties in headless Chromium.

The bank flow (``ivrbot run``'s Runner on 127.0.0.1) drawn in the flow panel: a box per step
with its prompt and options, filled with its kind's colour, a legend of the kinds, and the
picture zoomed to the panel's width (measured on the page: element sizes, the text's size on
screen). An outbound call placed by a bot shows the bot's number as ``from`` and the callee
as ``to``, live and on record. Screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from ivrbot.config import Settings
from ivrbot.flow.graph import GIVE_UP_COLOUR
from ivrbot.flow.loader import load_flow_file
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.serve import Runner
from tests.web.conftest import ARTIFACTS, ROOT, log_in
from tests.wire.test_calls import Party

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("chromium")]  # one browser at a time

# Everything the test measures of the picture, in CSS pixels on the page.
PICTURE_JS = """() => {
  const box = document.querySelector('#graph');
  const svg = box.querySelector('svg');
  const r = (el) => { const b = el.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  const scale = svg.getScreenCTM().a;  // picture units -> screen pixels
  const px = (el) => parseFloat(getComputedStyle(el).fontSize) * scale;
  const nodes = [...svg.querySelectorAll('g.node')].map((g) => ({
    id: g.id, kind: g.dataset.kind, fill: g.querySelector('rect').getAttribute('fill'),
    text: [...g.querySelectorAll('text')].map((t) => t.textContent), rect: r(g) }));
  const labels = [...svg.querySelectorAll('g.edge text')];
  const panel = box.parentElement;
  const inner = panel.clientWidth - parseFloat(getComputedStyle(panel).paddingLeft)
    - parseFloat(getComputedStyle(panel).paddingRight);
  // arrows drawn through a box they do not start or end at, from the drawn geometry
  const rects = [...svg.querySelectorAll('g.node')].map((g) => {
    const b = g.querySelector('rect');
    const [x, y, w, h] = ['x', 'y', 'width', 'height'].map((k) => Number(b.getAttribute(k)));
    return { step: g.id === 'give-up' ? '(give up)' : g.id.slice(5), box: [x + 2, y + 2, x + w - 2, y + h - 2] };
  });
  const cuts = (a, b, [x0, y0, x1, y1]) => {  // sampled: 1 px steps along the segment
    const n = Math.ceil(Math.hypot(b[0] - a[0], b[1] - a[1]));
    for (let i = 0; i <= n; i++) {
      const x = a[0] + ((b[0] - a[0]) * i) / n, y = a[1] + ((b[1] - a[1]) * i) / n;
      if (x > x0 && x < x1 && y > y0 && y < y1) return true;
    }
    return false;
  };
  const through = [];
  for (const e of svg.querySelectorAll('g.edge')) {
    const pts = [...e.querySelector('path').getAttribute('d').matchAll(/[ML] ([0-9.-]+) ([0-9.-]+)/g)]
      .map((m) => [Number(m[1]), Number(m[2])]);
    for (const r of rects) {
      if (r.step === e.dataset.from || r.step === e.dataset.to) continue;
      if (pts.some((p, i) => i > 0 && cuts(pts[i - 1], p, r.box))) through.push(`${e.dataset.from} -> ${e.dataset.to} crosses ${r.step}`);
    }
  }
  return {
    box: r(box), svg: r(svg), panelInner: inner, nodes, through,
    labels: labels.map((t) => t.textContent),
    smallestLabelPx: Math.min(...labels.map(px)),
    smallestBoxTextPx: Math.min(...[...svg.querySelectorAll('g.node text')].map(px)),
    legend: [...document.querySelectorAll('#legend li[data-kind]')].map((li) =>
      [li.dataset.kind, getComputedStyle(li.querySelector('i')).backgroundColor]),
    legendText: document.querySelector('#legend').textContent,
  };
}"""


def inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    return (
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def rgb(colour: str) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


async def picture(page: Page) -> dict[str, Any]:
    return await page.evaluate(PICTURE_JS)


async def test_the_flow_picture_shows_each_step_and_fits_the_panel(
    dashboard: Page, bank: Runner
) -> None:
    flow = load_flow_file(ROOT / "flows" / "bank.py", check_model=False)
    await log_in(dashboard, bank.server.url, Settings().client_secret)
    await dashboard.wait_for_selector("#graph svg g.node")
    shown = await picture(dashboard)

    nodes = {n["id"]: n for n in shown["nodes"]}
    assert list(nodes) == [*(f"step-{name}" for name in flow.steps), "give-up"]  # a box per step
    give_up = nodes["give-up"]["text"]  # where misses no step takes end
    assert give_up[0] == "give up" and give_up[-1] == "hang up", give_up
    menu = " ".join(nodes["step-menu"]["text"])
    assert menu.startswith("menu Menu “Welcome to ivrbot bank. For your balance, press 1.")
    assert "1 → account · 2 → agent" in menu  # its options
    assert "“Please enter your six digit account number" in " ".join(nodes["step-account"]["text"])
    assert "<= 60 s, # ends" in nodes["step-voicemail"]["text"]
    for name, step in flow.steps.items():  # filled with its kind's colour
        assert nodes[f"step-{name}"]["fill"] == step.colour, name
    kinds = {step.kind: step.colour for step in flow.steps.values()} | {"give up": GIVE_UP_COLOUR}
    assert shown["legend"] == [[kind, rgb(colour)] for kind, colour in kinds.items()]
    assert len(set(kinds.values())) == len(kinds)
    for words in ("start step", "next / goto", "other ways", "a live call is here"):
        assert words in shown["legendText"]
    assert {"option 1", "option 2", "no input", "fallback"} <= set(shown["labels"])

    # the picture spans the panel and every box is in it; text is legible, not shrunk
    assert abs(shown["svg"][2] - shown["svg"][0] - shown["panelInner"]) <= 1
    assert all(inside(n["rect"], shown["svg"]) for n in nodes.values())
    assert shown["through"] == []  # no arrow runs through a box
    assert shown["smallestLabelPx"] >= 11.5, shown["smallestLabelPx"]
    assert shown["smallestBoxTextPx"] >= 10.5, shown["smallestBoxTextPx"]
    ARTIFACTS.mkdir(exist_ok=True)
    await dashboard.locator("#graph").screenshot(path=str(ARTIFACTS / "dashboard-flow.png"))

    # a narrower window: the picture is zoomed out to fit again, nothing sticks out
    await dashboard.set_viewport_size({"width": 760, "height": 900})
    await dashboard.wait_for_function(
        "() => { const s = document.querySelector('#graph svg'); const b = s.parentElement;"
        " return Math.abs(s.getBoundingClientRect().width - b.clientWidth) <= 1; }"
    )
    narrow = await picture(dashboard)
    assert narrow["svg"][2] - narrow["svg"][0] < shown["svg"][2] - shown["svg"][0]
    assert all(inside(n["rect"], narrow["svg"]) for n in narrow["nodes"])
    assert narrow["svg"][2] <= narrow["box"][2] + 1


CALLOUT = """
from ivrbot.flow import Flow, Hangup, Say

flow = Flow("callout", number="5550001015", detect_machine=False)
flow.add(
    Say("hello", "Hello, this is a call from the dashboard test. It is only a test.", next="bye"),
    Hangup("bye", "Goodbye."),
)
"""


@pytest.fixture
async def callout(tmp_path: Path) -> AsyncIterator[Runner]:
    """``ivrbot run`` serving one outbound flow (and the bank flow)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "callout.py").write_text(CALLOUT)
    shutil.copy(ROOT / "flows" / "bank.py", flows / "bank.py")
    settings = Settings(port=0, db=str(tmp_path / "ivrbot.db"), recordings=tmp_path / "rec")
    runner = Runner(flows, settings)
    await runner.start()
    yield runner
    await runner.stop()


async def test_an_outbound_call_is_from_the_bot_to_the_callee(
    dashboard: Page, callout: Runner
) -> None:
    url = callout.server.url
    pat = Party(url, "pat")
    await pat.phone.login(token=await fetch_token(url), user_id="pat@ivrbot.local")
    try:
        await log_in(dashboard, url, Settings().client_secret)
        await dashboard.wait_for_selector("#status:text-is('live')")
        bot = next(b for b in callout.bots.values() if b.flow.name == "callout")
        flow_call = await bot.dial("pat@ivrbot.local")
        await pat.wait("call:incoming")
        live = dashboard.locator("#calls tbody tr[data-flow=callout]")
        await live.wait_for()  # ringing: the bot's number calls pat
        assert await live.get_attribute("data-direction") == "outbound"
        assert await live.locator(".party.from").text_content() == "from+1 (555) 000-1015"
        assert await live.locator(".party.to").text_content() == "topat@ivrbot.local"
        await pat.phone.answer(remote_media=pat.hear)
        record = await bot.finished_call(flow_call, timeout_s=30)
        assert record.to_dict()["direction"] == "outbound"

        row = dashboard.locator(f"#records tbody tr[data-id='{record.id}']")
        await row.locator("td.outcome:text-is('completed')").wait_for()
        cells = [await row.locator(f"td.{c}").text_content() for c in ("direction", "from", "to")]
        assert cells == ["↗ outbound", "+1 (555) 000-1015", "pat@ivrbot.local"]
        assert await dashboard.locator("#records thead th").all_text_contents() == [
            "Started", "Direction", "From", "To", "Flow", "Outcome", "Path", "Inputs", "Recordings"
        ]  # fmt: skip
        ARTIFACTS.mkdir(exist_ok=True)
        await dashboard.locator("#records").screenshot(
            path=str(ARTIFACTS / "dashboard-outbound.png")
        )
    finally:
        await pat.phone.close()
