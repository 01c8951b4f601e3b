"""Scenarios: a flow run end to end over real media, from a TOML file (``ivrbot flows test``).

A scenario file sits next to the flows, ``flows/scenarios/<flow>.<case>.toml``. Running it
starts a gateway on 127.0.0.1 (a free port, a temporary SQLite file), a bot for the flow
(with its speech model) and either a simulated caller who dials the flow's number
(inbound) or a simulated callee whom the bot dials (outbound: a person says "Hello?", an
answering machine plays a long greeting and a 1000 Hz beep). The caller (or callee) acts
out the ``actions`` in order; when the call has ended, ``expect`` is checked against the
call's record and ``call.vars``.

::

    description = "A caller rates 4, says 아니요 and leaves a comment."
    flow = "survey"         # optional: the flow's name (default: the file name up to the
                            # first dot), or a .py file relative to this file
    direction = "inbound"   # optional: inbound (default) | outbound
    callee = "human"        # outbound: human (default) | machine; implies outbound
    greeting = "Hello?"     # optional, outbound: what the callee says when it answers
    timeout = 30            # optional: seconds the whole call may take (default 30)

    [env]                   # optional: variables over the environment for this scenario:
    IVRBOT_NOW = "2025-01-06T20:30"   # IVRBOT_* settings, and call.env for the flow (e.g. its
                                      # clock); the process environment is not changed

    [[actions]]
    hear = true             # wait until a prompt has been heard to its end
    contains = "rate"       # optional: a prompt so far contains this (any case)
    timeout = 15            # optional: seconds to wait for it (default 15)
    silence = 0.8           # optional: the quiet that ends a prompt (default 0.8 s)
    [[actions]]
    press = "4"             # keypad keys as RFC 4733 events ("123#")
    [[actions]]
    press_inband = "5"      # keypad keys as audible tones
    [[actions]]
    say = "아니요"           # speak (espeak-ng), voice "ko" unless voice = "..."
    [[actions]]
    wait = 2.0              # seconds
    [[actions]]
    hangup = true           # hang up (otherwise the call must end by itself)

    [expect]                # all optional
    path = ["q1_rating", "rating", "..."]    # the steps run; a last "..." means "starts with"
    prompts_include = ["Thank you"]          # each is part of some prompt (any case)
    inputs = [{ outcome = "dtmf", value = "4" }, { step = "q3_comment",
               outcome = ["speech", "nomatch"] }]  # every answer, in order: step, outcome,
                                                   # value, method; a list means any of
    outcome = "completed"   # a name of README "Outcomes": completed, caller-hangup, machine,
                            # no-input | no-match (the bot gave up), error, ...
    vars = { rating = 4, recommend = "no" }  # call.vars, compared as text (see plain())
    recordings = 1          # how many recordings the call made

Actions may also be written inline: ``actions = [{ hear = true }, { press = "4" }]``. A
file that is not valid TOML, or has an unknown key or a wrong value, is refused with one
line naming it. Recordings go to a temporary folder (``Settings.recordings``), removed after
the scenario. The time a scenario takes includes starting its bot (loading the speech
model the first time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.loader import flow_files, import_flow_file, load_flow_file
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.runner import Bot
from ivrbot.process_setup import configure_media
from ivrbot.speech.tts import Synthesizer, check_tts
from ivrbot.testing.callee import SimulatedCallee, greeting_audio
from ivrbot.testing.caller import SPEECH_DB, NotAnswered, SimulatedCaller
from ivrbot.testing.scenario_file import (
    Action,
    Expect,
    Scenario,
    ScenarioError,
    check_expectations,
    load_scenario,
    plain,
    scenario_files,
    show,
)
from ivrbot.timeline import Timeline

__all__ = [
    "Action",
    "Expect",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "ScenarioRunner",
    "SimulatedCallee",
    "check_expectations",
    "load_scenario",
    "plain",
    "run_scenarios",
    "scenario_files",
]

log = logging.getLogger(__name__)

WAITING_FOR_THE_END = "waiting for the call to end"
RECORD_WAIT_S = 5.0  # after the call ends, how long the bot may take to finish its record


class ActionFailed(Exception):
    """An action could not be carried out (no prompt heard, the call ended...)."""


# running -------------------------------------------------------------------------------------
@dataclass
class ScenarioResult:
    scenario: Scenario
    seconds: float
    failures: list[str]
    record: FlowRecord | None = None
    values: dict[str, str] = field(default_factory=dict)
    timeline: Timeline | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "file": str(self.scenario.file),
            "flow": self.scenario.flow,
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
            "failures": self.failures,
            "record": self.record.to_dict() if self.record is not None else None,
            "vars": self.values,
            "events": [e.to_dict() for e in self.timeline.entries] if self.timeline else [],
        }


def default_flows_dir(file: Path) -> Path:
    """The folder of flows a scenario file belongs to: flows/ for flows/scenarios/x.toml."""
    folder = file.resolve().parent
    return folder.parent if folder.name == "scenarios" else folder


def find_scenario_flow(scenario: Scenario, flows_dir: Path | None = None) -> Flow:
    """Load the scenario's flow: a .py path (relative to the scenario file), else the flow of
    that name in ``flows_dir`` (<flows_dir>/<name>.py first; then every flow file)."""
    if scenario.flow.endswith(".py"):
        return load_flow_file(scenario.file.parent / scenario.flow)
    folder = flows_dir or default_flows_dir(scenario.file)
    guess = folder / f"{scenario.flow}.py"
    candidates = [guess] if guess.is_file() else []
    candidates += [p for p in flow_files(folder) if p != guess] if folder.is_dir() else []
    for path in candidates:
        try:
            name = import_flow_file(path).name
        except FlowError:
            if path == guess:
                raise
            continue  # another flow's problem: not this scenario's
        if name == scenario.flow:
            return load_flow_file(path)
    raise FlowError(
        f"no flow named {scenario.flow!r} in {folder}/ (set flow = 'NAME' or 'file.py')"
    )


class _Call:
    """One scenario's call in progress: the bot, the other party and the flow call."""

    def __init__(self, scenario: Scenario, bot: Bot, party: SimulatedCaller) -> None:
        self.scenario = scenario
        self.bot = bot
        self.party = party
        self.flow_call: FlowCall | None = None
        self.current = "while dialing"  # what the scenario is doing (for a timeout's message)

    def bot_call(self) -> FlowCall | None:
        if self.flow_call is None:
            running = [*(fc for fc, _ in self.bot.active.values()), *self.bot.finished]
            self.flow_call = running[0] if running else None
        return self.flow_call

    async def act(self, action: Action) -> None:
        self.current = f"during {action}"
        party = self.party
        try:
            if action.kind == "hear":
                await self._hear(action)
            elif self.party.disconnected.is_set():
                raise ActionFailed("the call has already ended")
            elif action.kind == "press":
                await party.press(action.value)
            elif action.kind == "press_inband":
                await party.press_inband(action.value)
            elif action.kind == "say":
                await party.say(action.value, action.voice)
            elif action.kind == "wait":
                await asyncio.sleep(action.value)
            elif action.kind == "hangup":
                await party.hangup()
        except ActionFailed as exc:
            raise ActionFailed(f"{action}: {exc}") from None
        except Exception as exc:
            raise ActionFailed(f"{action}: {type(exc).__name__}: {exc}") from None

    async def _hear(self, action: Action) -> None:
        ear, start = self.party.ear, len(self.party.ear.levels)
        heard = asyncio.ensure_future(self.party.hear_prompt(action.silence_s, action.timeout_s))
        gone = asyncio.ensure_future(self.party.disconnected.wait())
        try:
            done, _ = await asyncio.wait({heard, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            heard.cancel()
            gone.cancel()
        if heard in done:
            if heard.exception() is not None:
                raise ActionFailed(f"heard no prompt within {action.timeout_s:g} s")
        elif not any(db > SPEECH_DB for _, db in ear.levels[start:]):
            raise ActionFailed("the call ended before a prompt was heard")
        if action.contains is not None:
            await self._check_contains(action.contains)

    async def _check_contains(self, text: str) -> None:
        prompts: list[str] = []
        for _ in range(40):  # the prompt heard is in the record already; allow 2 s of slack
            flow_call = self.bot_call()
            prompts = flow_call.record.prompts if flow_call is not None else []
            if any(text.casefold() in p.casefold() for p in prompts):
                return
            await asyncio.sleep(0.05)
        raise ActionFailed(f"no prompt so far contains {text!r}; the bot said {show(prompts)}")

    async def until_ended(self) -> FlowRecord:
        self.current = WAITING_FOR_THE_END
        await self.party.disconnected.wait()
        record = await self.record()
        if record is None:
            raise ActionFailed(f"the call ended, but the bot kept no record of it within "
                               f"{RECORD_WAIT_S:g} s")  # fmt: skip
        return record

    async def record(self) -> FlowRecord | None:
        """The bot's record of the call once it has finished it (None: not in time)."""
        for _ in range(int(RECORD_WAIT_S / 0.05)):
            flow_call = self.bot_call()
            if flow_call is not None and flow_call.done:
                return flow_call.record
            await asyncio.sleep(0.05)
        return None


class ScenarioRunner:
    """Runs scenarios one after another, each with its own gateway, bot and caller."""

    def __init__(self, tts: Synthesizer, flows_dir: Path | None = None) -> None:
        self.tts = tts
        self.flows_dir = flows_dir

    async def run(self, scenario: Scenario) -> ScenarioResult:
        began = time.monotonic()
        timeline = Timeline()
        result = ScenarioResult(scenario, 0.0, [], timeline=timeline)
        with tempfile.TemporaryDirectory(prefix="ivrbot-scenario-") as work:
            try:
                await self._run(scenario, Path(work), result)
            except (FlowError, OSError) as exc:
                result.failures.append(f"error: {exc}")
            except Exception as exc:  # one scenario's failure does not stop the others
                log.debug("scenario %s failed", scenario.name, exc_info=True)
                result.failures.append(f"error: {type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - began
        return result

    @staticmethod
    def settings(scenario: Scenario, work: Path) -> Settings:
        """The settings of a scenario's run: the environment with the scenario's ``[env]``
        over it (the environment itself is not changed), recordings under ``work``, a
        gateway on a free port of 127.0.0.1 with its own SQLite file."""
        env = {"IVRBOT_RECORDINGS": str(work / "recordings"), **scenario.env}
        return Settings.with_env(env, host="127.0.0.1", port=0, db=str(work / "gateway.db"))

    async def _run(self, scenario: Scenario, work: Path, result: ScenarioResult) -> None:
        settings = self.settings(scenario, work)
        configure_media(settings)
        flow = find_scenario_flow(scenario, self.flows_dir)
        inbound = scenario.direction == "inbound"
        async with contextlib.AsyncExitStack() as stack:
            parts = await stack.enter_async_context(
                assemble(settings, tts=self.tts, timeline=result.timeline)
            )
            party: SimulatedCaller
            if inbound:
                party = SimulatedCaller(parts.url, self.tts, result.timeline)
            else:
                greeting = await greeting_audio(
                    self.tts, scenario.callee == "machine", scenario.greeting
                )
                party = SimulatedCallee(parts.url, self.tts, result.timeline, greeting)
            stack.push_async_callback(party.close)
            bot = await parts.serve(flow, inbound=inbound)  # attached inside, as ivrbot run
            await self._call(scenario, _Call(scenario, bot, party), result)

    async def _call(self, scenario: Scenario, call: _Call, result: ScenarioResult) -> None:
        record: FlowRecord | None = None
        try:
            async with asyncio.timeout(scenario.timeout_s):
                await self._connect(scenario, call)
                for action in scenario.actions:
                    await call.act(action)
                record = await call.until_ended()
        except TimeoutError:
            hint = ""
            if call.current == WAITING_FOR_THE_END:
                hint = "; end the scenario with hangup = true, or raise timeout"
            result.failures.append(
                f"timed out after {scenario.timeout_s:g} s, {call.current}{hint}"
            )
        except ActionFailed as exc:
            result.failures.append(str(exc))
        if record is None:  # end the call to get the record of what happened so far
            if not call.party.disconnected.is_set() and call.party.call is not None:
                with contextlib.suppress(Exception):
                    await call.party.hangup()
            record = await call.record()
            if record is not None:
                result.failures.append(f"the bot's path so far: {show(record.path)}")
        if record is None:
            return
        result.record = record
        flow_call = call.bot_call()
        values = flow_call.vars if flow_call is not None else {}
        result.values = {k: plain(v) for k, v in values.items()}
        if not result.failures:
            result.failures += check_expectations(scenario.expect, record, values)

    async def _connect(self, scenario: Scenario, call: _Call) -> None:
        bot, party = call.bot, call.party
        if isinstance(party, SimulatedCallee):
            await party.log_in()
            call.flow_call = await bot.dial(party.user_id)
            call.current = "while the callee answers and greets"
            ended = asyncio.ensure_future(bot.finished_call(call.flow_call))
            greeted = asyncio.ensure_future(party.greeted.wait())
            try:
                await asyncio.wait({ended, greeted}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                greeted.cancel()
            if not party.greeted.is_set():
                outcome = call.flow_call.record.outcome or "ended"
                raise ActionFailed(f"the call ended before the callee answered ({outcome})")
            return
        try:
            await party.dial(bot.flow.numbers[0])
        except (NotAnswered, TimeoutError) as exc:
            raise ActionFailed(f"dialing {bot.flow.numbers[0]}: {exc}") from None


async def run_scenarios(
    scenarios: list[Scenario],
    flows_dir: Path | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Run ``scenarios`` one after another (one speech synthesiser for all of them)."""
    check_tts()
    results = []
    async with Synthesizer() as tts:
        runner = ScenarioRunner(tts, flows_dir)
        for scenario in scenarios:
            result = await runner.run(scenario)
            if on_result is not None:
                on_result(result)
            results.append(result)
    return results
