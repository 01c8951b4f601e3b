"""Scenario files: reading and checking them, and comparing a call with what they expect.

The format is described in :mod:`ivrbot.testing.scenario`, which runs scenarios.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

from ivrbot.errors import UserError
from ivrbot.flow.conference_steps import ConferenceResult
from ivrbot.flow.media_steps import RecordResult
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.steps import Answer
from ivrbot.flow.transfer_steps import TransferResult
from ivrbot.media.amd import AmdResult

ACTIONS = ("hear", "press", "press_inband", "say", "wait", "hangup")
OPTIONS = {"hear": {"contains", "timeout", "silence"}, "say": {"voice"}}
TOP_KEYS = {"description", "flow", "direction", "callee", "greeting", "timeout", "env",
            "actions", "expect"}  # fmt: skip
EXPECT_KEYS = ("path", "prompts_include", "inputs", "outcome", "vars", "recordings")
INPUT_KEYS = ("step", "outcome", "value", "method")
KEYS = set("0123456789*#ABCD")


class ScenarioError(UserError, ValueError):
    """A scenario file that cannot be read; the message names the file and what to fix."""


# the file format -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    index: int  # 1-based, as the file lists them
    kind: str  # one of ACTIONS
    value: Any
    contains: str | None = None
    timeout_s: float = 15.0
    silence_s: float = 0.8
    voice: str = "ko"

    def __str__(self) -> str:
        return f"action {self.index} ({self.kind})"


@dataclass
class Expect:
    path: list[str] | None = None
    prompts_include: list[str] = field(default_factory=list)
    inputs: list[dict[str, list[str]]] | None = None  # each field: any of these texts
    outcome: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    recordings: int | None = None


@dataclass
class Scenario:
    file: Path
    flow: str
    description: str = ""
    direction: str = "inbound"
    callee: str = "human"
    greeting: str | None = None
    timeout_s: float = 30.0
    env: dict[str, str] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    expect: Expect = field(default_factory=Expect)

    @property
    def name(self) -> str:
        return self.file.name.removesuffix(".toml")


def scenario_files(path: Path) -> list[Path]:
    """The scenario files at ``path``: the file itself, or the *.toml files in a folder."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.toml"))
        if not files:
            raise ScenarioError(f"{path}: no scenario files (*.toml) in it")
        return files
    raise ScenarioError(f"{path}: no such scenario file or folder")


def load_scenario(file: Path) -> Scenario:
    """Read and validate one scenario file (ScenarioError: one line naming the file)."""
    try:
        with file.open("rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{file}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{file}: cannot be read: {exc}") from None
    try:
        return _scenario(file, data)
    except ScenarioError as exc:
        raise ScenarioError(f"{file}: {exc}") from None


def _scenario(file: Path, data: dict[str, Any]) -> Scenario:
    _known(data, TOP_KEYS, "")
    flow = data.get("flow", file.name.split(".")[0])
    scenario = Scenario(file, _text(flow, "flow"))
    scenario.description = _text(data.get("description", ""), "description", empty=True)
    callee = data.get("callee")
    direction = data.get("direction", "outbound" if callee is not None else "inbound")
    if direction not in ("inbound", "outbound"):
        raise ScenarioError(f"direction must be 'inbound' or 'outbound', not {direction!r}")
    if direction == "inbound" and (callee is not None or "greeting" in data):
        raise ScenarioError("callee and greeting are for outbound scenarios (the bot dials)")
    scenario.direction = direction
    scenario.callee = callee if callee is not None else "human"
    if scenario.callee not in ("human", "machine"):
        raise ScenarioError(f"callee must be 'human' or 'machine', not {callee!r}")
    if "greeting" in data:
        scenario.greeting = _text(data["greeting"], "greeting")
    scenario.timeout_s = _seconds(data.get("timeout", 30.0), "timeout")
    env = data.get("env", {})
    if not isinstance(env, dict):
        raise ScenarioError("env must be a table of NAME = value")
    scenario.env = {str(k): plain(v) for k, v in env.items()}
    actions = data.get("actions", [])
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise ScenarioError("actions must be a list of tables ([[actions]] entries)")
    scenario.actions = [_action(i, a) for i, a in enumerate(actions, 1)]
    expect = data.get("expect", {})
    if not isinstance(expect, dict):
        raise ScenarioError("expect must be a table ([expect])")
    scenario.expect = _expect(expect)
    return scenario


def _known(table: Mapping[str, Any], known: set[str] | tuple[str, ...], where: str) -> None:
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ScenarioError(
            f"{where}unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _text(value: Any, what: str, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value.strip()):
        raise ScenarioError(f"{what} must be a non-empty string, not {value!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ScenarioError(f"{what} must be a positive number of seconds, not {value!r}")
    return float(value)


def _action(index: int, table: dict[str, Any]) -> Action:
    where = f"action {index}: "
    kinds = [k for k in ACTIONS if k in table]
    if len(kinds) != 1:
        got = f"got {', '.join(kinds)}" if kinds else f"got {', '.join(table) or 'nothing'}"
        raise ScenarioError(f"{where}give exactly one of {', '.join(ACTIONS)} ({got})")
    kind = kinds[0]
    _known(table, {kind, *OPTIONS.get(kind, ())}, where)
    value = table[kind]
    try:
        if kind in ("hear", "hangup") and value is not True:
            raise ScenarioError(f"write {kind} = true")
        if kind in ("press", "press_inband"):
            value = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(value, str) or not value or not set(value) <= KEYS:
                raise ScenarioError(f"{kind} takes keypad keys 0-9 * # A-D, not {value!r}")
        if kind == "say":
            value = _text(value, "say")
        if kind == "wait":
            value = _seconds(value, "wait")
        action = Action(index, kind, value)
        if kind == "hear":
            contains = table.get("contains")
            action = Action(
                index, kind, value,
                contains=None if contains is None else _text(contains, "contains"),
                timeout_s=_seconds(table.get("timeout", 15.0), "timeout"),
                silence_s=_seconds(table.get("silence", 0.8), "silence"),
            )  # fmt: skip
        if kind == "say":
            action = Action(index, kind, value, voice=_text(table.get("voice", "ko"), "voice"))
    except ScenarioError as exc:
        raise ScenarioError(f"{where}{exc}") from None
    return action


def _expect(table: dict[str, Any]) -> Expect:
    _known(table, EXPECT_KEYS, "expect: ")
    expect = Expect()
    try:
        if "path" in table:
            expect.path = _texts(table["path"], "path")
        if "prompts_include" in table:
            value = table["prompts_include"]
            expect.prompts_include = [value] if isinstance(value, str) else _texts(value, "")
        if "inputs" in table:
            expect.inputs = _inputs(table["inputs"])
        if "outcome" in table:
            expect.outcome = _text(table["outcome"], "outcome")
        if "vars" in table:
            if not isinstance(table["vars"], dict):
                raise ScenarioError("vars must be a table of name = value")
            expect.vars = {str(k): plain(v) for k, v in table["vars"].items()}
        if "recordings" in table:
            count = table["recordings"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ScenarioError(f"recordings must be a count (0 or more), not {count!r}")
            expect.recordings = count
    except ScenarioError as exc:
        raise ScenarioError(f"expect: {exc}") from None
    return expect


def _texts(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{what or 'prompts_include'} must be a list of strings")
    return list(value)


def _inputs(value: Any) -> list[dict[str, list[str]]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ScenarioError("inputs must be a list of tables, e.g. [{ outcome = 'dtmf' }]")
    out = []
    for i, entry in enumerate(value, 1):
        _known(entry, INPUT_KEYS, f"inputs {i}: ")
        fields: dict[str, list[str]] = {}
        for key, want in entry.items():
            options = want if isinstance(want, list) else [want]
            fields[key] = [plain(v) for v in options]
        out.append(fields)
    return out


# comparing -----------------------------------------------------------------------------------
def plain(value: Any) -> str:
    """A value as a scenario compares it: text. An Ask's answer is its value (its outcome when
    empty), a Record's, Transfer's or Conference's result its outcome, answering-machine detection its verdict; booleans
    are ``true``/``false``, None is ``none``, numbers as written (``4``, ``1.5``)."""
    if isinstance(value, Answer):
        return value.value or value.outcome
    if isinstance(value, RecordResult | TransferResult | ConferenceResult):
        return value.outcome
    if isinstance(value, AmdResult):
        return str(value.verdict)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, datetime | date | day_time):
        return value.isoformat()
    return str(value)


def show(values: list[str]) -> str:
    return json.dumps(values, ensure_ascii=False)


def _show_input(entry: Mapping[str, Any]) -> str:
    value = f" {entry['value']!r}" if entry.get("value") else ""
    return f"{entry.get('step', '?')}: {entry.get('outcome')}{value}"


def _input_matches(want: dict[str, list[str]], got: Mapping[str, Any]) -> bool:
    return all(plain(got.get(key, "")) in options for key, options in want.items())


def _show_wanted(want: dict[str, list[str]]) -> str:
    parts = [f"{k}={'|'.join(v)}" for k, v in want.items()]
    return "{" + ", ".join(parts) + "}"


def check_expectations(expect: Expect, record: FlowRecord, values: Mapping[str, Any]) -> list[str]:
    """What did not turn out as expected, one explanation (expected vs got) per line."""
    failures = []
    if expect.path is not None:
        want, got = expect.path, record.path
        if want and want[-1] == "...":
            if got[: len(want) - 1] != want[:-1]:
                failures.append(f"path: expected to start with {show(want[:-1])}, "
                                f"got {show(got)}")  # fmt: skip
        elif got != want:
            failures.append(f"path: expected {show(want)}, got {show(got)}")
    for text in expect.prompts_include:
        if not any(text.casefold() in p.casefold() for p in record.prompts):
            failures.append(f"prompts_include: no prompt contains {text!r}; "
                            f"the bot said {show(record.prompts)}")  # fmt: skip
    if expect.inputs is not None:
        got_inputs = record.inputs
        same = len(expect.inputs) == len(got_inputs) and all(
            _input_matches(w, g) for w, g in zip(expect.inputs, got_inputs, strict=False)
        )
        if not same:
            wanted = ", ".join(_show_wanted(w) for w in expect.inputs)
            failures.append(f"inputs: expected [{wanted}], "
                            f"got [{', '.join(_show_input(g) for g in got_inputs)}]")  # fmt: skip
    if expect.outcome is not None and record.outcome != expect.outcome:
        error = f" ({record.error})" if record.error else ""
        failures.append(f"outcome: expected {expect.outcome!r}, got {record.outcome!r}{error}")
    for key, want_value in expect.vars.items():
        got_value = plain(values[key]) if key in values else None
        if got_value != want_value:
            shown = "unset" if got_value is None else repr(got_value)
            failures.append(f"vars.{key}: expected {want_value!r}, got {shown}")
    if expect.recordings is not None and len(record.recordings) != expect.recordings:
        failures.append(f"recordings: expected {expect.recordings}, got {len(record.recordings)}")
    return failures
