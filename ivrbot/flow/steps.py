"""The steps a flow is made of. Declarative steps are data, so a flow can be checked and drawn.

A step type is one class: it runs (``run``), says where it can go (``edges``), what is wrong
with it (``check``) and how it is drawn (``kind``, ``colour``, ``summary``). ``flows check``
and ``flows graph`` ask each step; they know no step type by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ivrbot.errors import FlowError
from ivrbot.logs import shown_input

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.flow import Flow

DTMF_KEYS = set("0123456789*#ABCD")
# Where a miss goes when a Menu or Ask has no ``no_input`` / ``no_match`` step: the caller
# hears the flow's ``give_up`` text and the bot hangs up (a pseudo-step in edges and pictures)
GIVE_UP = "(give up)"
MISSES = {"noinput": "no-input", "nomatch": "no-match"}  # an Answer's outcome -> the record's


@dataclass(frozen=True)
class Edge:
    """A way from one step to another, labelled with when it is taken."""

    source: str
    target: str
    label: str  # 'next', 'no input', 'no match', 'goto', 'may go to', 'fallback', 'option 1'
    # target GIVE_UP: no step; the call ends (the caller hears Flow(give_up=...))


@dataclass(frozen=True)
class Problem:
    """Something wrong with a flow, found before it runs."""

    severity: str  # 'error' | 'warning'
    step: str | None
    message: str

    def __str__(self) -> str:
        where = f"step {self.step!r}: " if self.step else ""
        return f"{self.severity}: {where}{self.message}"


@dataclass
class Step:
    """A named node of the flow graph. ``run`` returns the next step's name (None: the default).

    A new step type subclasses this and overrides what differs: ``run``; ``edges`` when it
    goes elsewhere than ``next`` (default: the field ``next``, else the next step in order);
    ``check`` for its own mistakes; ``summary`` and ``colour`` for its box in the picture.
    """

    name: str
    colour: ClassVar[str] = "#ffffff"  # the fill of its box in the flow's picture
    # joins the caller with parties outside the call (transfer, move, conference): the
    # flow's calls then stay in the gateway's own process, where those parties are
    reaches_others: ClassVar[bool] = False

    async def run(self, call: FlowCall) -> str | None:
        raise NotImplementedError

    @property
    def kind(self) -> str:
        """What the picture calls this step (its class's name, unless a step says more)."""
        return type(self).__name__

    def summary(self) -> str:
        """A few words for its box in the picture."""
        return ""

    def edges(self, following: str | None) -> list[Edge]:
        """Where this step can go; ``following`` is the next step in order (None: none)."""
        nxt = getattr(self, "next", None) or following
        return [Edge(self.name, nxt, "next")] if nxt else []

    def check(self, flow: Flow) -> list[Problem]:
        """This step's own mistakes (unknown targets and reachability are the flow's)."""
        return []

    def problem(self, message: str, severity: str = "error") -> Problem:
        return Problem(severity, self.name, message)

    def source(self) -> str:
        """``file:line`` where the step's own code is (only Python steps have one)."""
        return ""

    def prompt_texts(self) -> list[str]:
        return []


@dataclass
class Say(Step):
    """Speak a prompt, then go on."""

    text: str
    next: str | None = None
    voice: str | None = None
    barge_in: bool = False

    colour: ClassVar[str] = "#60a5fa"

    async def run(self, call: FlowCall) -> str | None:
        await call.say(self.text, voice=self.voice, barge_in=self.barge_in)
        return self.next

    def summary(self) -> str:
        return self.text

    def check(self, flow: Flow) -> list[Problem]:
        return [] if self.text.strip() else [self.problem("Say has no text to speak")]

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

    def shown(self, secret: bool | None = None) -> dict[str, Any]:
        """As :meth:`to_dict`, with the value and words as records and logs show them
        (:func:`ivrbot.logs.shown_input`); ``masked``: whether they were hidden."""
        out = self.to_dict()
        for key in ("value", "text"):
            out[key] = shown_input(out[key], self.method, secret)
        out["masked"] = out["value"] != self.value
        return out


@dataclass(frozen=True)
class Retry:
    """How an Ask handles a caller who gives nothing usable (VoiceXML's counted <noinput> and
    <nomatch>): ask ``attempts`` times in all (default 3); before asking again, say the i-th
    of ``no_input_prompts`` / ``no_match_prompts`` (the last one repeats; none: just ask
    again). Only then route on to ``no_input`` / ``no_match``, or, when the Ask has none,
    give up: the caller hears ``Flow(give_up=...)`` and the bot hangs up. A flow sets the
    default for its Asks (``Flow(retry=...)``); an Ask may set its own.
    """

    attempts: int = 3
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
    Speech ends after ``incomplete_timeout_s`` of silence, or already after
    ``complete_timeout_s`` when what was heard is exactly one whole choice (VoiceXML's
    ``incompletetimeout`` / ``completetimeout``; None: the flow's, by default 0.3 / 0.15 s).
    ``secret``: how records, logs and the dashboard show the answer (``call.vars`` always
    has it): None (default) an entry of several keys by its length only (``<6 digits>``),
    True every answer hidden (keys or words), False as it is.
    The answer is stored in ``call.vars[name]``. ``next`` is for a usable answer only: no
    input or no match is asked again as ``retry`` says (default: the flow's, 3 attempts),
    then goes to ``no_input`` / ``no_match``; without one, the bot gives up (the caller
    hears ``Flow(give_up=...)``, the call ends, its record's outcome is ``no-input`` /
    ``no-match``), never on to ``next`` or the next step in order.
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
    complete_timeout_s: float | None = None  # silence after a whole choice (None: the flow's)
    incomplete_timeout_s: float | None = None  # silence after other speech (None: the flow's)
    secret: bool | None = None  # True: never shown; None: several keys by length only
    choice_map: dict[str, str] = field(init=False, default_factory=dict)
    colour: ClassVar[str] = "#4ade80"

    def __post_init__(self) -> None:
        if isinstance(self.choices, Mapping):
            self.choice_map = dict(self.choices)
        elif self.choices:
            self.choice_map = {c: c for c in self.choices}

    async def run(self, call: FlowCall) -> str | None:
        answer = await self.answer(call)
        if answer.outcome in MISSES:
            return await self.missed(call, answer)
        return self.next

    async def missed(self, call: FlowCall, answer: Answer) -> str | None:
        """After the retries, no usable answer: its ``no_input`` / ``no_match`` step, else the
        bot gives up on the call (None: the call has ended)."""
        target = self.no_input if answer.outcome == "noinput" else self.no_match
        if target:
            return target
        await call.give_up(MISSES[answer.outcome])
        return None

    def can_mismatch(self) -> bool:
        """Whether an answer can be a no-match: speech can, and keys can when an entry may
        be too short (the finish key first, or ``min_digits``); one key of a plain Ask
        cannot (any key is an answer)."""
        short = self.digits > 1 and (bool(self.finish_key) or self.min_digits > 1)
        return bool(self.choice_map) or self.free_form or short

    def miss_edges(self) -> list[Edge]:
        """Where no input and no match go (GIVE_UP: the bot gives up on the call)."""
        out = [Edge(self.name, self.no_input or GIVE_UP, "no input")]
        if self.can_mismatch():
            out.append(Edge(self.name, self.no_match or GIVE_UP, "no match"))
        return out

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

    def edges(self, following: str | None) -> list[Edge]:
        nxt = self.next or following
        return ([Edge(self.name, nxt, "next")] if nxt else []) + self.miss_edges()

    def ways(self) -> str:
        """How the caller answers: 'keys', 'speech', 'keys + speech', 'free speech'."""
        ways = (["keys"] if self.digits else []) + (["speech"] if self.choice_map else [])
        ways += ["free speech"] if self.free_form else []
        return " + ".join(ways) or "nothing"

    def summary(self) -> str:
        return f"{self.ways()}: {self.prompt}"

    def check(self, flow: Flow) -> list[Problem]:
        wrong = []
        if not self.prompt.strip():
            wrong.append("Ask has no prompt")
        if self.digits < 0:
            wrong.append(f"digits must be 0 or more, not {self.digits}")
        if self.digits > 0 and not 1 <= self.min_digits <= self.digits:
            wrong.append(
                f"min_digits must be from 1 to digits ({self.digits}), not {self.min_digits}"
            )
        if self.digits == 0 and not self.listens:
            wrong.append(
                "Ask takes neither digits (digits=0) nor speech (no choices): nothing to ask"
            )
        if self.timeout_s <= 0 or self.inter_digit_timeout_s <= 0:
            wrong.append("timeouts must be positive numbers of seconds")
        for label in ("complete_timeout_s", "incomplete_timeout_s"):
            value = getattr(self, label)
            if value is not None and not _positive_seconds(value):
                wrong.append(f"{label} must be a positive number of seconds, not {value!r}")
        if self.finish_key and self.finish_key not in DTMF_KEYS:
            wrong.append(f"finish_key {self.finish_key!r} is not a keypad key (0-9 * # A-D)")
        if self.barge_in not in (True, False, "dtmf", "speech"):
            wrong.append(f"barge_in must be True, False, 'dtmf' or 'speech', not {self.barge_in!r}")
        if self.secret not in (None, True, False):
            wrong.append(f"secret must be True, False or None, not {self.secret!r}")
        if self.choices is not None and not self.choice_map:
            wrong.append("choices is empty: give words to listen for, or leave choices out")
        return [self.problem(message) for message in wrong]

    def speech_timeouts(self, flow: Flow) -> tuple[float, float]:
        """(complete, incomplete) timeouts in seconds: this Ask's, else the flow's."""
        complete = self.complete_timeout_s
        incomplete = self.incomplete_timeout_s
        return (
            flow.complete_timeout_s if complete is None else complete,
            flow.incomplete_timeout_s if incomplete is None else incomplete,
        )

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


def _positive_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass
class Menu(Ask):
    """A menu: the caller's choice picks the next step.

    ``options`` maps a key (``"1"``) or a spoken choice's name to a step. Keys and words
    are taken as an Ask takes them (``digits`` defaults to 1; ``choices`` maps words to
    choice names, e.g. ``{"잔액": "1"}`` so a word and a key go to the same step); any other
    answer is a no-match, asked again as ``retry`` says (the flow's: 3 attempts), then
    routed to ``no_match``, or, without one, the bot gives up (an apology and a hang-up).
    No input likewise, with ``no_input``. Unless routed there, a miss never goes to an
    option's step, nor to ``next`` (a Menu has none: it goes on by its options), nor to the
    next step in order.
    """

    options: Mapping[str, str] = field(default_factory=dict)
    colour: ClassVar[str] = "#fb923c"

    async def run(self, call: FlowCall) -> str | None:
        answer = await self.answer(call)
        if answer.outcome in ("dtmf", "speech"):
            return self.options[answer.value]
        return await self.missed(call, answer)

    def judge(self, answer: Answer) -> Answer:
        answer = super().judge(answer)
        if answer.outcome in ("dtmf", "speech") and answer.value not in self.options:
            return replace(answer, outcome="nomatch")
        return answer

    def can_mismatch(self) -> bool:
        return True  # any key or word that is not an option

    def edges(self, following: str | None) -> list[Edge]:
        out = [Edge(self.name, to, f"option {key}") for key, to in self.options.items()]
        return out + self.miss_edges()

    def summary(self) -> str:
        return ", ".join(f"{k}: {v}" for k, v in self.options.items())

    def check(self, flow: Flow) -> list[Problem]:
        out = super().check(flow)
        if self.next is not None:
            out.append(self.problem(
                f"a Menu goes on by its options: next={self.next!r} is never taken; route "
                "a miss with no_input=... / no_match=... (without them the caller is asked "
                "again, then hears an apology and the bot hangs up)"
            ))  # fmt: skip
        if not self.options:
            return [*out, self.problem("Menu has no options: give options={'1': 'step'}")]
        for key in self.options:
            keyed = (
                self.digits and key.isascii() and len(key) <= self.digits and set(key) <= DTMF_KEYS
            )
            if not keyed and key not in self.choice_map.values():
                out.append(self.problem(
                    f"option {key!r} can be neither pressed nor said: make it keypad keys "
                    f"(digits={self.digits}) or the name of one of the choices"
                ))  # fmt: skip
        return out


@dataclass
class Goto(Step):
    """Go to step ``target``."""

    target: str
    colour: ClassVar[str] = "#c084fc"

    async def run(self, call: FlowCall) -> str | None:
        return self.target

    def edges(self, following: str | None) -> list[Edge]:
        return [Edge(self.name, self.target, "goto")]

    def summary(self) -> str:
        return f"to {self.target}"


@dataclass
class Hangup(Step):
    """Optionally say goodbye, then end the call."""

    text: str | None = None
    colour: ClassVar[str] = "#fb7185"

    async def run(self, call: FlowCall) -> str | None:
        if self.text:
            await call.say(self.text)
        await call.hangup()
        return None

    def edges(self, following: str | None) -> list[Edge]:
        return []

    def summary(self) -> str:
        return self.text or "end the call"

    def prompt_texts(self) -> list[str]:
        return [self.text] if self.text else []


@dataclass
class Python(Step):
    """An ``async def step(call) -> next step name`` written in Python.

    ``may_go_to`` (``goes_to=[...]`` of ``@flow.step``) lists the steps it may return; it
    is held to that when it runs: returning another name fails the step (None is always
    allowed: the next step in order, or the end of the call after a hang-up).
    """

    fn: Callable[[FlowCall], Awaitable[str | None]]
    may_go_to: tuple[str, ...] = ()
    colour: ClassVar[str] = "#a8a29e"

    async def run(self, call: FlowCall) -> str | None:
        chosen = await self.fn(call)
        if chosen is not None and self.may_go_to and chosen not in self.may_go_to:
            raise FlowError(
                f"{self.source()}: step {self.name!r} returned {chosen!r}, which is not in its "
                f"goes_to {list(self.may_go_to)}: return one of those, or add it to goes_to"
            )
        return chosen

    def edges(self, following: str | None) -> list[Edge]:
        targets = list(self.may_go_to) or ([following] if following else [])
        return [Edge(self.name, t, "may go to") for t in targets]

    def summary(self) -> str:
        return f"{getattr(self.fn, '__name__', 'python')}()"

    def check(self, flow: Flow) -> list[Problem]:
        if self.may_go_to:
            return []
        return [self.problem(
            "Python step declares no goes_to=[...]: the check assumes it goes to the next "
            "step in order, and the graph cannot show where else it goes", "warning"
        )]  # fmt: skip

    def source(self) -> str:
        code = getattr(self.fn, "__code__", None)
        return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""


@dataclass
class Set(Step):
    """Set variables in ``call.vars``, in order. A value may be a function of the call
    (``lambda call: ...``, or ``async def``): it is called when the step runs."""

    values: Mapping[str, Any]
    next: str | None = None
    colour: ClassVar[str] = "#d4a373"

    async def run(self, call: FlowCall) -> str | None:
        for key, value in self.values.items():
            if callable(value):
                value = value(call)
                if inspect.isawaitable(value):
                    value = await value
            call.vars[key] = value
        return self.next

    def summary(self) -> str:
        return ", ".join(
            f"{k}={'f(call)' if callable(v) else repr(v)}" for k, v in self.values.items()
        )

    def check(self, flow: Flow) -> list[Problem]:
        if not isinstance(self.values, Mapping) or not self.values:
            return [self.problem("Set needs a dict of variables to set, e.g. values={'tries': 0}")]
        if not all(isinstance(k, str) and k for k in self.values):
            return [self.problem("Set's variable names must be non-empty strings")]
        return []
