"""The steps a flow is made of. Declarative steps are data, so a flow can be checked and drawn."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall


@dataclass
class Step:
    """A named node of the flow graph. ``run`` returns the next step's name (None: the default)."""

    name: str

    async def run(self, call: FlowCall) -> str | None:
        raise NotImplementedError

    def targets(self) -> list[str]:
        """Steps this one may go to (for checking and drawing)."""
        return []

    def prompt_texts(self) -> list[str]:
        return []


@dataclass
class Say(Step):
    """Speak a prompt, then go on."""

    text: str
    next: str | None = None
    voice: str | None = None
    barge_in: bool = False

    async def run(self, call: FlowCall) -> str | None:
        await call.say(self.text, voice=self.voice, barge_in=self.barge_in)
        return self.next

    def targets(self) -> list[str]:
        return [self.next] if self.next else []

    def prompt_texts(self) -> list[str]:
        return [self.text]


@dataclass(frozen=True)
class Answer:
    """What the caller gave at an Ask: keypad digits, a spoken choice, or nothing usable."""

    outcome: str  # 'dtmf' | 'speech' | 'noinput' | 'nomatch'
    value: str = ""  # the digits, or the choice name
    text: str = ""  # the recognised words (speech)
    confidence: float = 1.0
    method: str = ""  # 'rfc4733' | 'inband' | 'asr'

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "value": self.value,
            "text": self.text,
            "confidence": round(self.confidence, 3),
            "method": self.method,
        }


@dataclass(frozen=True)
class Retry:
    """How an Ask handles a caller who gives nothing usable (VoiceXML's counted <noinput> and
    <nomatch>): ask ``attempts`` times in all; before asking again, say the i-th of
    ``no_input_prompts`` / ``no_match_prompts`` (the last one repeats; none: just ask again).
    Only then route on to ``no_input`` / ``no_match``. A flow sets the default for its Asks.
    """

    attempts: int = 1
    no_input_prompts: tuple[str, ...] = ()
    no_match_prompts: tuple[str, ...] = ()

    def prompt_before(self, outcome: str, miss: int) -> str | None:
        prompts = self.no_input_prompts if outcome == "noinput" else self.no_match_prompts
        return prompts[min(miss, len(prompts)) - 1] if prompts else None


@dataclass
class Ask(Step):
    """Prompt, then take keypad digits and/or a spoken choice.

    ``digits``: how many keypad digits to take at most (0: keypad off); ``finish_key`` ends
    early; fewer than ``min_digits`` (default 1) is a no-match. ``timeout_s``: how long to
    wait for the first input after the prompt; ``inter_digit_timeout_s``: between digits.
    ``choices``: words to listen for, mapped to choice names (None: speech off);
    ``free_form``: take whatever is said instead (value = the transcript).
    The answer is stored in ``call.vars[name]``; after the retries of ``retry`` (default:
    the flow's), routing goes to ``no_input`` / ``no_match`` when set, otherwise ``next``.
    """

    prompt: str
    digits: int = 1
    choices: Mapping[str, str] | Sequence[str] | None = None
    timeout_s: float = 5.0
    inter_digit_timeout_s: float = 3.0
    finish_key: str = "#"
    barge_in: bool | str = True  # True: keys or speech stop the prompt; 'dtmf', 'speech', False
    next: str | None = None
    no_input: str | None = None
    no_match: str | None = None
    voice: str | None = None
    retry: Retry | None = None
    free_form: bool = False  # listen for any words (the transcript is the answer's value)
    min_digits: int = 1
    choice_map: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.choices, Mapping):
            self.choice_map = dict(self.choices)
        elif self.choices:
            self.choice_map = {c: c for c in self.choices}

    async def run(self, call: FlowCall) -> str | None:
        answer = await self.answer(call)
        if answer.outcome == "noinput" and self.no_input:
            return self.no_input
        if answer.outcome == "nomatch" and self.no_match:
            return self.no_match
        return self.next

    async def answer(self, call: FlowCall) -> Answer:
        """Ask (again after no input or no match, as ``retry`` says); the final answer."""
        retry = self.retry or call.flow.retry
        for attempt in range(1, max(1, retry.attempts) + 1):
            answer = await call.ask(self)
            if answer.outcome not in ("noinput", "nomatch") or attempt >= retry.attempts:
                break
            before = retry.prompt_before(answer.outcome, attempt)
            if before:
                await call.say(before)
        call.vars[self.name] = answer
        return answer

    def judge(self, answer: Answer) -> Answer:
        """The answer as this step takes it: too few digits is a no-match."""
        if answer.outcome == "dtmf" and len(answer.value) < max(1, self.min_digits):
            return replace(answer, outcome="nomatch")
        return answer

    def targets(self) -> list[str]:
        return [t for t in (self.next, self.no_input, self.no_match) if t]

    @property
    def listens(self) -> bool:
        """Whether this Ask takes speech (a grammar of choices, or free-form)."""
        return bool(self.choice_map) or self.free_form

    def barges(self, kind: str) -> bool:
        """Whether input of ``kind`` ('dtmf' or 'speech') stops the prompt."""
        return self.barge_in is True or self.barge_in == kind

    def prompt_texts(self) -> list[str]:
        extra = self.retry.no_input_prompts + self.retry.no_match_prompts if self.retry else ()
        return [self.prompt, *extra]


@dataclass
class Menu(Ask):
    """A menu: the caller's choice picks the next step.

    ``options`` maps a key (``"1"``) or a spoken choice's name to a step. Keys and words
    are taken as an Ask takes them (``digits`` defaults to 1; ``choices`` maps words to
    choice names, e.g. ``{"잔액": "1"}`` so a word and a key go to the same step); any other
    answer is a no-match, asked again as ``retry`` says, then routed to ``no_match``
    (default: ``next``, then the next step in order).
    """

    options: Mapping[str, str] = field(default_factory=dict)

    async def run(self, call: FlowCall) -> str | None:
        answer = await self.answer(call)
        if answer.outcome in ("dtmf", "speech"):
            return self.options[answer.value]
        return (self.no_input if answer.outcome == "noinput" else self.no_match) or self.next

    def judge(self, answer: Answer) -> Answer:
        answer = super().judge(answer)
        if answer.outcome in ("dtmf", "speech") and answer.value not in self.options:
            return replace(answer, outcome="nomatch")
        return answer

    def targets(self) -> list[str]:
        return [*dict.fromkeys(self.options.values()), *super().targets()]


@dataclass
class Goto(Step):
    target: str

    async def run(self, call: FlowCall) -> str | None:
        return self.target

    def targets(self) -> list[str]:
        return [self.target]


@dataclass
class Hangup(Step):
    """Optionally say goodbye, then end the call."""

    text: str | None = None

    async def run(self, call: FlowCall) -> str | None:
        if self.text:
            await call.say(self.text)
        await call.hangup()
        return None

    def prompt_texts(self) -> list[str]:
        return [self.text] if self.text else []


@dataclass
class Python(Step):
    """An ``async def step(call) -> next step name`` written in Python."""

    fn: Callable[[FlowCall], Awaitable[str | None]]
    may_go_to: tuple[str, ...] = ()

    async def run(self, call: FlowCall) -> str | None:
        return await self.fn(call)

    def targets(self) -> list[str]:
        return list(self.may_go_to)


@dataclass
class Set(Step):
    """Set variables in ``call.vars``, in order. A value may be a function of the call
    (``lambda call: ...``, or ``async def``): it is called when the step runs."""

    values: Mapping[str, Any]
    next: str | None = None

    async def run(self, call: FlowCall) -> str | None:
        for key, value in self.values.items():
            if callable(value):
                value = value(call)
                if inspect.isawaitable(value):
                    value = await value
            call.vars[key] = value
        return self.next

    def targets(self) -> list[str]:
        return [self.next] if self.next else []
