"""Static checks of a flow before it runs: the graph, the prompts, the options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ivrbot.flow.conference_steps import Conference
from ivrbot.flow.flow import Flow
from ivrbot.flow.media_steps import Play, Record, play_file
from ivrbot.flow.steps import Ask, Goto, Hangup, Menu, Python, Say, Set, Step
from ivrbot.flow.transfer_steps import TRANSFER_MODES, Move, Transfer, format_fields
from ivrbot.media.recorder import FORMAT_SUFFIX
from ivrbot.media.sinks import read_audio
from ivrbot.numbers import called_party_uri

DTMF_KEYS = set("0123456789*#ABCD")


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str  # 'next', 'no input', 'no match', 'goto', 'may go to', 'fallback'


@dataclass(frozen=True)
class Problem:
    severity: str  # 'error' | 'warning'
    step: str | None
    message: str

    def __str__(self) -> str:
        where = f"step {self.step!r}: " if self.step else ""
        return f"{self.severity}: {where}{self.message}"


def flow_edges(flow: Flow) -> list[Edge]:
    """Where each step can go, including the implicit 'next step in order'."""
    out: list[Edge] = []
    for step in flow.steps.values():
        following = flow.next_after(step.name)
        if isinstance(step, Goto):
            out.append(Edge(step.name, step.target, "goto"))
        elif isinstance(step, Hangup):
            continue
        elif isinstance(step, Menu):
            out += [Edge(step.name, to, f"option {key}") for key, to in step.options.items()]
            nxt = step.next or following
            for missed, label in ((step.no_input, "no input"), (step.no_match, "no match")):
                if missed or nxt:
                    out.append(Edge(step.name, missed or nxt or "", label))
        elif isinstance(step, Ask):
            nxt = step.next or following
            if nxt:
                out.append(Edge(step.name, nxt, "next"))
            for target, label in ((step.no_input, "no input"), (step.no_match, "no match")):
                if target and target != nxt:
                    out.append(Edge(step.name, target, label))
        elif isinstance(step, Record):
            nxt = step.next or following
            if nxt:
                out.append(Edge(step.name, nxt, "next"))
            if step.no_input and step.no_input != nxt:
                out.append(Edge(step.name, step.no_input, "no input"))
        elif isinstance(step, Transfer | Move):
            # after a transfer or a move the flow ends: the only way on is when it fails
            nxt = step.fallback or step.next or following
            if nxt:
                out.append(Edge(step.name, nxt, "fallback"))
        elif isinstance(step, Conference):
            # leaving the caller in the room ends the flow; staying goes on to next
            nxt = step.next or following
            if step.stay and nxt:
                out.append(Edge(step.name, nxt, "next"))
            failed = step.fallback or nxt
            if failed and not (step.stay and failed == nxt):
                out.append(Edge(step.name, failed, "fallback"))
        elif isinstance(step, Play | Set | Say):
            nxt = step.next or following
            if nxt:
                out.append(Edge(step.name, nxt, "next"))
        elif isinstance(step, Python):
            targets = list(step.may_go_to) or ([following] if following else [])
            out += [Edge(step.name, t, "may go to") for t in targets]
        else:
            nxt = getattr(step, "next", None) or following
            if nxt:
                out.append(Edge(step.name, nxt, "next"))
    return out


def _step_problems(step: Step, flow: Flow) -> list[Problem]:
    out = []

    def error(message: str) -> None:
        out.append(Problem("error", step.name, message))

    if isinstance(step, Say) and not step.text.strip():
        error("Say has no text to speak")
    if isinstance(step, Ask):
        if not step.prompt.strip():
            error("Ask has no prompt")
        if step.digits < 0:
            error(f"digits must be 0 or more, not {step.digits}")
        if step.digits > 0 and not 1 <= step.min_digits <= step.digits:
            error(f"min_digits must be from 1 to digits ({step.digits}), not {step.min_digits}")
        if step.digits == 0 and not step.listens:
            error("Ask takes neither digits (digits=0) nor speech (no choices): nothing to ask")
        if step.timeout_s <= 0 or step.inter_digit_timeout_s <= 0:
            error("timeouts must be positive numbers of seconds")
        if step.finish_key and step.finish_key not in DTMF_KEYS:
            error(f"finish_key {step.finish_key!r} is not a keypad key (0-9 * # A-D)")
        if step.barge_in not in (True, False, "dtmf", "speech"):
            error(f"barge_in must be True, False, 'dtmf' or 'speech', not {step.barge_in!r}")
        if step.choices is not None and not step.choice_map:
            error("choices is empty: give words to listen for, or leave choices out")
    if isinstance(step, Menu):
        out += _menu_problems(step)
    if isinstance(step, Conference):
        out += _conference_problems(step)
    if isinstance(step, Record):
        if step.prompt is not None and not step.prompt.strip():
            error("Record's prompt is empty: give words to say, or leave prompt out")
        if not step.max_s > 0:
            error(f"max_s must be a positive number of seconds, not {step.max_s!r}")
        if not step.silence_s > 0:
            error(f"silence_s must be a positive number of seconds, not {step.silence_s!r}")
        key = step.finish_key
        if key and (len(key) != 1 or key not in DTMF_KEYS):
            error(f"finish_key {key!r} is not a keypad key (0-9 * # A-D; '' for none)")
        if step.fmt not in FORMAT_SUFFIX:
            error(f"fmt {step.fmt!r} is not a recording format ({', '.join(FORMAT_SUFFIX)})")
    if isinstance(step, Play):
        out += _play_problems(step, flow)
    if isinstance(step, Transfer | Move):
        out += _hand_over_problems(step)
    if isinstance(step, Set):
        if not isinstance(step.values, Mapping) or not step.values:
            error("Set needs a dict of variables to set, e.g. values={'tries': 0}")
        elif not all(isinstance(k, str) and k for k in step.values):
            error("Set's variable names must be non-empty strings")
    if isinstance(step, Python) and not step.may_go_to:
        out.append(
            Problem(
                "warning",
                step.name,
                "Python step declares no goes_to=[...]: the check assumes it goes to the next "
                "step in order, and the graph cannot show where else it goes",
            )
        )
    return out


def _menu_problems(step: Menu) -> list[Problem]:
    if not step.options:
        return [Problem("error", step.name, "Menu has no options: give options={'1': 'step'}")]
    out = []
    for key in step.options:
        keyed = step.digits and key.isascii() and len(key) <= step.digits and set(key) <= DTMF_KEYS
        if not keyed and key not in step.choice_map.values():
            out.append(Problem("error", step.name, f"option {key!r} can be neither pressed nor "
                               f"said: make it keypad keys (digits={step.digits}) or the name of "
                               "one of the choices"))  # fmt: skip
    return out


def _conference_problems(step: Conference) -> list[Problem]:
    out: list[Problem] = []
    for label, text in (("room", step.room), ("announce", step.announce), ("say", step.say)):
        if text is None:
            continue
        if not isinstance(text, str) or not text.strip():
            out.append(Problem("error", step.name, f"{label} is empty: give words, or leave it out"
                               if label != "room" else "Conference has no room name"))  # fmt: skip
            continue
        try:
            format_fields(text)
        except ValueError as exc:
            out.append(Problem("error", step.name, f"{label} is not a valid format string "
                               f"({exc}): write {{var}} for a call variable"))  # fmt: skip
    return out


def _hand_over_problems(step: Transfer | Move) -> list[Problem]:
    out: list[Problem] = []

    def add(message: str, severity: str = "error") -> None:
        out.append(Problem(severity, step.name, message))

    kind = type(step).__name__
    if not step.timeout_s > 0:
        add(f"timeout_s must be a positive number of seconds, not {step.timeout_s!r}")
    if step.fallback and step.next and step.fallback != step.next:
        add(f"{kind} never goes to next {step.next!r}: when it fails it goes to fallback "
            f"{step.fallback!r}, and after it the flow ends; leave one out", "warning")  # fmt: skip
    if not isinstance(step, Transfer):
        return out
    to = step.to
    if not isinstance(to, str) or not to.strip():
        add("Transfer has no target: give to='agent@ivrbot.local' or a number")
    elif "sip:" in to or "tel:" in to or to.count("@") > 1:
        add(f"to {to!r}: give a number or user@domain (no sip:/tel:, one @)")
    elif called_party_uri(to, "ivrbot.local") is None:
        add(f"to {to!r} is not a callable number or user@domain")
    if step.mode not in TRANSFER_MODES:
        add(f"mode must be 'blind' or 'warm', not {step.mode!r}")
    if step.say is not None and not step.say.strip():
        add("say is empty: give a sorry prompt, or leave say out")
    if step.announce is not None:
        if not step.announce.strip():
            add("announce is empty: give words for the target, or leave announce out")
        try:
            format_fields(step.announce)
        except ValueError as exc:
            add(f"announce is not a valid format string ({exc}): write {{var}} for a call "
                f"variable, {{{{ and }}}} for a brace")  # fmt: skip
        if step.mode == "blind":
            add("announce is only spoken in a warm transfer (mode='warm')", "warning")
    elif step.mode == "warm":
        add("a warm transfer announces the caller to the target: give announce='...'")
    return out


def _play_problems(step: Play, flow: Flow) -> list[Problem]:
    """The file must exist and decode (which also caches it for the first call)."""
    file = play_file(step.path, flow)
    try:
        read_audio(file)
    except FileNotFoundError:
        return [Problem("error", step.name, f"Play file {str(step.path)!r} not found ({file})")]
    except (OSError, ValueError) as exc:
        message = f"Play file {str(step.path)!r} cannot be played: {exc}"
        return [Problem("error", step.name, message)]
    return []


def check_flow(flow: Flow) -> list[Problem]:
    """Every problem found: unknown targets and unreachable steps, prompts, options."""
    if not flow.steps:
        return [Problem("error", None, "the flow has no steps: add some with flow.add(...)")]
    problems: list[Problem] = []
    edges = flow_edges(flow)
    for edge in edges:
        if edge.target not in flow.steps:
            problems.append(
                Problem(
                    "error", edge.source, f"goes to unknown step {edge.target!r} ({edge.label})"
                )
            )
    for step in flow.steps.values():
        problems += _step_problems(step, flow)
    starts = [flow.start]
    if flow.on_error is not None:
        if flow.on_error in flow.steps:
            starts.append(flow.on_error)
        else:
            problems.append(
                Problem("error", None, f"on_error names unknown step {flow.on_error!r}")
            )
    reached, todo = set(starts), list(starts)
    while todo:
        current = todo.pop()
        for edge in edges:
            if edge.source == current and edge.target in flow.steps and edge.target not in reached:
                reached.add(edge.target)
                todo.append(edge.target)
    for name in flow.steps:
        if name not in reached:
            problems.append(
                Problem("error", name, f"unreachable from the start step {flow.start!r}")
            )
    return problems


def errors(flow: Flow) -> list[Problem]:
    return [p for p in check_flow(flow) if p.severity == "error"]
