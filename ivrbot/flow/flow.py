"""A flow: what a bot answers, how it answers, and the graph of steps it runs per call."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ivrbot.errors import FlowError
from ivrbot.events import Event
from ivrbot.flow.steps import GIVE_UP, Ask, Python, Retry, Step
from ivrbot.integrations.signing import url_problem
from ivrbot.numbers import virtual_number_user_id

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall

StepFunction = Callable[["FlowCall"], Awaitable[str | None]]
EventHandler = Callable[..., Awaitable[None] | None]


RING_S = 6.0  # one ring: the North American cadence (2 s of ringback, 4 s of quiet)
GIVE_UP_TEXT = "Sorry, I could not understand. Goodbye."


__all__ = ["GIVE_UP_TEXT", "RING_S", "EventHandler", "Flow", "FlowError", "StepFunction"]


class Flow:
    """Declare a flow in a module under ``flows/``::

    flow = Flow("welcome", number="5550001000")
    flow.add(Say("greet", "Welcome."), Ask("menu", "Press a digit."), Hangup("bye"))

    A call starts at step ``start`` (default: the first step added); ``flows check`` reports
    a start that names no step.

    @flow.step("confirm")
    async def confirm(call: FlowCall) -> str: ...

    @flow.on("call:disconnected")
    def log_it(event): ...
    """

    def __init__(
        self,
        name: str,
        number: str | list[str],
        auto_answer: bool = True,
        voice: str = "en",
        rate: int | None = None,
        language: str | None = None,
        description: str = "",
        retry: Retry | None = None,
        detect_machine: bool = True,
        model: str | os.PathLike[str] | None = None,
        rings: int = 0,
        apology: str = "Sorry, something went wrong.",
        give_up: str = GIVE_UP_TEXT,
        on_error: str | None = None,
        max_calls: int | None = None,
        start: str | None = None,
        complete_timeout_s: float = 0.15,
        incomplete_timeout_s: float = 0.3,
        webhook: str | None = None,
        webhook_steps: bool = False,
    ) -> None:
        self.name = name
        numbers = [number] if isinstance(number, str) else list(number)
        if not numbers:
            raise FlowError(f"flow {name!r}: give it a number to answer")
        try:
            self.user_ids = [virtual_number_user_id(n) for n in numbers]
        except ValueError as exc:
            raise FlowError(f"flow {name!r}: {exc}") from None
        self.numbers = [u[4:] for u in self.user_ids]
        self.auto_answer = auto_answer
        # auto-answer after this many rings (of RING_S seconds: the caller hears ringback)
        if not isinstance(rings, int) or isinstance(rings, bool) or rings < 0:
            raise FlowError(f"flow {name!r}: rings must be a whole number, 0 or more: {rings!r}")
        self.rings = rings
        self.ring_s = RING_S
        self.voice = voice
        self.rate = rate
        self.language = language  # the speech model's language ('ko', 'en'): see models/
        self.model = os.fspath(model) if model is not None else None  # a model path or name
        self.description = description
        # The default for every Ask and Menu of this flow: no input or no match is asked
        # again, 3 attempts in all (Retry()), then goes to the step's no_input / no_match;
        # without one the bot gives up: the caller hears ``give_up`` ('' for silence), the
        # bot hangs up, and the record's outcome is 'no-input' / 'no-match'.
        self.retry = retry or Retry()
        if not isinstance(give_up, str):
            raise FlowError(f"flow {name!r}: give_up must be text to say ('' for none)")
        self.give_up = give_up
        # Spoken answers end after this much silence: complete_timeout_s once what was heard
        # is one whole choice of the Ask's grammar, incomplete_timeout_s otherwise (the
        # defaults for every Ask of this flow; VoiceXML's completetimeout/incompletetimeout)
        for label, value in (
            ("complete_timeout_s", complete_timeout_s),
            ("incomplete_timeout_s", incomplete_timeout_s),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise FlowError(
                    f"flow {name!r}: {label} must be a positive number of seconds: {value!r}"
                )
        self.complete_timeout_s = float(complete_timeout_s)
        self.incomplete_timeout_s = float(incomplete_timeout_s)
        # Outbound calls: tell a person from an answering machine before the first step
        # (call.vars['answered_by'] = 'human' | 'machine' | 'notsure'); after a machine, the
        # first step starts after its beep (call.vars['beep'] says whether one was heard).
        self.detect_machine = detect_machine
        # A step that fails: the caller hears ``apology`` ('' for silence), then the flow goes
        # to step ``on_error``, or hangs up when there is none; the record says where it failed.
        # calls at once (None: IVRBOT_FLOW_MAX_CALLS); more callers wait in the queue
        if max_calls is not None and (not isinstance(max_calls, int) or max_calls < 1):
            raise FlowError(f"flow {name!r}: max_calls must be a whole number, 1 or more")
        self.max_calls = max_calls
        self.apology = apology
        self.on_error = on_error
        if start is not None and (not isinstance(start, str) or not start):
            raise FlowError(f"flow {name!r}: start must be the name of a step, not {start!r}")
        self.start_step = start  # None: the first step added
        # where this flow's call events (and its campaigns' events) are POSTed, signed; with
        # webhook_steps also every step (README: Starting calls over HTTP, and webhooks)
        if webhook is not None:
            problem = url_problem(webhook)
            if problem:
                raise FlowError(f"flow {name!r}: webhook {problem}")
        self.webhook = webhook or ""
        self.webhook_steps = bool(webhook_steps)
        self.steps: dict[str, Step] = {}
        self.handlers: dict[Event, list[EventHandler]] = {}
        self.source: str = ""

    # building ----------------------------------------------------------------------------
    def add(self, *steps: Step) -> Flow:
        for step in steps:
            if step.name == GIVE_UP:
                raise FlowError(f"flow {self.name!r}: {GIVE_UP!r} is not a step name ivrbot allows")
            if step.name in self.steps:
                raise FlowError(f"flow {self.name!r}: two steps are named {step.name!r}")
            self.steps[step.name] = step
        return self

    def step(
        self, name: str | None = None, goes_to: list[str] | None = None
    ) -> Callable[[StepFunction], StepFunction]:
        """Decorator: an ``async def step(call) -> next step name`` becomes a step.

        ``goes_to`` lists the steps it may return, so the flow can be checked and drawn.
        """

        def register(fn: StepFunction) -> StepFunction:
            self.add(Python(name or fn.__name__, fn, tuple(goes_to or ())))
            return fn

        return register

    def on(self, event: str) -> Callable[[EventHandler], EventHandler]:
        """Decorator: subscribe a handler to a Phone event by its spec name."""
        try:
            name = Event(event)
        except ValueError:
            raise FlowError(
                f"flow {self.name!r}: unknown event {event!r} (see docs/spec/phone-api.md for names)"
            ) from None

        def register(fn: EventHandler) -> EventHandler:
            self.handlers.setdefault(name, []).append(fn)
            return fn

        return register

    # reading -----------------------------------------------------------------------------
    @property
    def start(self) -> str:
        """The step every call starts at: ``Flow(start=...)``, else the first step added."""
        if self.start_step is not None:
            return self.start_step
        return next(iter(self.steps), "")

    def next_after(self, name: str) -> str | None:
        names = list(self.steps)
        i = names.index(name)
        return names[i + 1] if i + 1 < len(names) else None

    def needs_speech(self) -> bool:
        return any(isinstance(s, Ask) and s.listens for s in self.steps.values())

    def reaches_others(self) -> bool:
        """Whether a step joins the caller with parties outside the call (see Step)."""
        return any(s.reaches_others for s in self.steps.values())

    def needs_free_form(self) -> bool:
        return any(isinstance(s, Ask) and s.free_form for s in self.steps.values())

    def prompts(self) -> list[str]:
        """Every static prompt text (pre-synthesised when the bot starts)."""
        own = [t for s in self.steps.values() for t in s.prompt_texts()]
        own += [text for text in (self.apology, self.give_up) if text]
        return own + list(self.retry.no_input_prompts + self.retry.no_match_prompts)
