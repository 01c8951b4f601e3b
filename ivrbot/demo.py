"""The demo: gateway + bot + a simulated caller, in one process, on real media."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.flow.loader import load_flow_file
from ivrbot.process_setup import configure_media
from ivrbot.speech.tts import check_tts
from ivrbot.testing.caller import NotAnswered, SimulatedCaller
from ivrbot.timeline import Timeline


@dataclass
class DemoResult:
    result: str  # 'completed' | 'failed'
    digits: str
    speech: str
    choices: list[str]
    prompts: list[str]
    path: list[str]
    events: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    heard_prompts: list[dict[str, Any]] = field(default_factory=list)  # seconds, text

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result,
            "digits": self.digits,
            "speech": self.speech,
            "choices": self.choices,
            "prompts": self.prompts,
            "path": self.path,
            "events": self.events,
            "heard_prompts": self.heard_prompts,
            "problems": self.problems,
        }


async def run_demo(
    flow_path: Path, press: str = "7", say: str = "메뉴", settings: Settings | None = None
) -> DemoResult:
    """Call the flow once: press ``press``, say ``say``, hang up. Checks what the bot got."""
    settings = replace(settings or Settings(), port=0)  # a free port
    check_tts()
    configure_media(settings)
    flow = load_flow_file(flow_path)  # a speech flow whose model is missing fails here
    timeline = Timeline()
    problems: list[str] = []
    async with assemble(settings, timeline=timeline) as parts:
        timeline.add("gateway", "listening", url=parts.url)
        bot = await parts.serve(flow)  # attached inside the gateway, as ivrbot run
        caller = SimulatedCaller(parts.url, parts.tts, timeline)
        try:
            await caller.dial(flow.numbers[0])
            await caller.hear_prompt()
            await caller.press(press)
            await caller.hear_prompt()
            await caller.say(say)
            await caller.hear_prompt()
            await caller.hangup()
            with contextlib.suppress(TimeoutError):  # no record: reported below
                await bot.wait_records(timeout_s=5)
        except TimeoutError as exc:
            problems.append(f"the caller gave up waiting: {exc}")
        except NotAnswered as exc:
            problems.append(f"the bot did not answer: {exc}")
        finally:
            await caller.close()
            await parts.stop_bots()
            gateway = parts.gateway
            leftovers = len(gateway.sessions), len(gateway.switch.calls)
    if leftovers != (0, 0):
        problems.append(f"the gateway still holds {leftovers[0]} sessions, {leftovers[1]} calls")
    record = bot.records[0] if bot.records else None
    caller.finish_hearing()
    if record is not None:  # the caller's timeline names the prompts it heard
        caller.name_prompts(record.prompts, record.prompts_at)
    if record is None:
        problems.append("the bot kept no record of the call")
    digits = record.digits if record else ""
    inputs = record.inputs if record else []
    speech = " ".join(i["text"] for i in inputs if i["outcome"] == "speech")
    choices = [i["value"] for i in inputs if i["outcome"] == "speech"]
    if digits != press:
        problems.append(f"the bot received digits {digits!r}, the caller pressed {press!r}")
    if not choices:
        problems.append(f"the bot did not recognise the spoken word {say!r}")
    return DemoResult(
        result="failed" if problems else "completed",
        digits=digits,
        speech=speech,
        choices=choices,
        prompts=record.prompts if record else [],
        path=record.path if record else [],
        events=[e.to_dict() for e in timeline.entries],
        problems=problems,
        heard_prompts=[h.to_dict() for h in caller.heard],
    )
