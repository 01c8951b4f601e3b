"""Test your own flows in milliseconds: a fake caller on virtual time.

::

    from ivrbot.testing.flowtest import FlowTest
    from flows.bank import flow

    def test_a_wrong_key_then_a_balance() -> None:
        result = FlowTest(flow).press("9").press("1").press("123456#").hangup().run()
        assert result.path == ["defaults", "menu", "account", "balance", "more"]
        assert result.heard("1523 dollars and 40 cents")
        assert result.outcome == "caller-hangup"

The flow runs through its real steps and the real ``FlowCall.run`` loop; only the caller
and the media are fake. The caller's actions are taken in order by the questions that can
take them: ``press`` (keys, in one go: ``"123456#"``), ``say`` (words, judged by the
question's choices as a recognised answer is: a word that is not a choice is a no-match),
``silence`` (no answer: the question times out), ``hangup``. When the script runs out, the
caller stays silent. A Transfer, Move or Conference step takes the next scripted answer
(``transfer_answers``, ``move_answers``, ``conference_joins``); without one the run stops
with a :class:`FlowTestError` that names the step. A Record step takes the next action
(words: a message; silence or keys: none). Time is virtual: prompts (0.4 s a word),
timeouts and ``await call.sleep(s)`` in a Python step pass at once (``asyncio.sleep``
would really wait).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivrbot.errors import UserError
from ivrbot.flow.flow import Flow
from ivrbot.flow.loader import load_flow_file
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.steps import DTMF_KEYS
from ivrbot.testing.clock import VirtualClock
from ivrbot.testing.fake_call import (
    TRANSFER_OUTCOMES,
    Action,
    FakeCall,
    HangUp,
    Keys,
    Script,
    Silence,
    Speech,
    Unscripted,
)

REAL_TIMEOUT_S = (
    10.0  # a run taking this long in real time is stuck (a step waits on something real)
)


class FlowTestError(UserError, AssertionError):
    """The test cannot run the flow as scripted (the message says what to add or change)."""


@dataclass
class FlowResult:
    """What a call through the flow did, as a test checks it."""

    record: FlowRecord  # the call's record, as a bot would store it
    vars: dict[str, Any]  # call.vars at the end
    played: list[str]  # audio files played (Play steps), 'beep' for a Record's beep
    notes: list[tuple[str, dict[str, Any]]]  # everything the flow noted, in order
    hung_up_by: str  # 'bot' | 'caller' | '' (the call was handed over)
    elapsed_s: float  # how long the call took on the virtual clock
    unused: list[Action] = field(default_factory=list)  # the script's actions never taken

    @property
    def path(self) -> list[str]:
        """The steps run, in order."""
        return self.record.path

    @property
    def prompts(self) -> list[str]:
        """The texts the caller heard, in order."""
        return self.record.prompts

    @property
    def inputs(self) -> list[dict[str, Any]]:
        """Each answer as the record keeps it: step, outcome ('dtmf', 'speech', 'noinput',
        'nomatch', 'recording'), value, text, confidence, method."""
        return self.record.inputs

    @property
    def answers(self) -> list[tuple[str, str, str]]:
        """Each answer as (step, outcome, value), as the record shows it: an entry of several
        keys by its length (``<6 digits>``) unless the Ask says ``secret=False``; the value
        itself is in ``vars[step]``."""
        return [(i["step"], i["outcome"], i["value"]) for i in self.record.inputs]

    @property
    def outcome(self) -> str:
        """How the call ended (README "Outcomes"): 'completed', 'no-input', 'no-match',
        'caller-hangup', 'error', 'transferred', 'moved', 'conferenced', 'opted-out',
        'machine'..."""
        return self.record.outcome

    @property
    def error(self) -> str:
        """'step NAME: what went wrong (file:line)' when the outcome is 'error'."""
        return self.record.error

    @property
    def error_step(self) -> str | None:
        """The step that failed (None: none did)."""
        return next((str(d["step"]) for e, d in self.notes if e == "error"), None)

    @property
    def transfers(self) -> list[dict[str, Any]]:
        """Transfer and Move attempts: step, target, mode, outcome, reason, announcement..."""
        return self.record.transfers

    @property
    def conferences(self) -> list[dict[str, Any]]:
        return self.record.conferences

    @property
    def recordings(self) -> list[str]:
        """Messages a Record step kept (where their files would be: the kit writes none)."""
        return self.record.recordings

    def heard(self, text: str) -> bool:
        """Whether a prompt the caller heard contains ``text``."""
        return any(text in prompt for prompt in self.record.prompts)


class FlowTest:
    """A call to ``flow`` (a :class:`Flow`, or the path of a flow module) by a scripted
    caller. Chain the caller's actions and the outside answers, then ``run()`` (or ``await
    run_async()`` in an async test).

    ``env``: the call's environment (``call.env``: e.g. ``{"IVRBOT_NOW": "..."}``);
    ``vars``: ``call.vars`` when the call starts (what a campaign would set, e.g.
    ``{"answered_by": "machine"}``); ``caller``: the caller's address; ``start``: the wall
    time the virtual clock starts at (seconds since the epoch; default: now).
    """

    def __init__(
        self,
        flow: Flow | str | os.PathLike[str],
        *,
        env: Mapping[str, str] | None = None,
        vars: Mapping[str, Any] | None = None,
        caller: str = "sip:caller@ivrbot.local",
        start: float | None = None,
    ) -> None:
        self.flow = flow if isinstance(flow, Flow) else load_flow_file(Path(flow), False)
        self.env = dict(env or {})
        self.vars = dict(vars or {})
        self.caller = caller
        self.start = start
        self.actions: list[Action] = []
        self.transfers: list[str] = []
        self.moves: list[bool] = []
        self.conferences: list[bool] = []

    # the caller -----------------------------------------------------------------------------
    def press(self, keys: str) -> FlowTest:
        """Press ``keys`` in one go (``"1"``, ``"123456#"``)."""
        if not isinstance(keys, str) or not keys or not set(keys) <= DTMF_KEYS:
            raise FlowTestError(f"press({keys!r}): give keypad keys (0-9 * # A-D), e.g. '1'")
        self.actions.append(Keys(keys))
        return self

    def say(self, words: str) -> FlowTest:
        """Say ``words`` (as the recogniser would hear them)."""
        if not isinstance(words, str) or not words.strip():
            raise FlowTestError(f"say({words!r}): give the words the caller says")
        self.actions.append(Speech(words))
        return self

    def silence(self, seconds: float | None = None) -> FlowTest:
        """Say nothing: to the question being asked (no ``seconds``: it times out), or for
        ``seconds`` before the next action (answering in time, or not, as the question's
        ``timeout_s`` says)."""
        if seconds is not None and not seconds >= 0:
            raise FlowTestError(f"silence({seconds!r}): give seconds (0 or more), or nothing")
        self.actions.append(Silence(seconds))
        return self

    def hangup(self) -> FlowTest:
        """Hang up (when the flow next waits for the caller)."""
        self.actions.append(HangUp())
        return self

    # the parties outside the call ---------------------------------------------------------------
    def transfer_answers(self, *answers: bool | str) -> FlowTest:
        """What the next Transfer steps' targets do, one each: True (answers: transferred),
        False (no answer), or an outcome: 'transferred', 'no-answer', 'busy', 'rejected',
        'failed'."""
        for answer in answers:
            outcome = (
                answer if isinstance(answer, str) else "transferred" if answer else "no-answer"
            )
            if outcome not in TRANSFER_OUTCOMES:
                raise FlowTestError(f"transfer_answers({answer!r}): give True, False or one of "
                                    f"{', '.join(TRANSFER_OUTCOMES)}")  # fmt: skip
            self.transfers.append(outcome)
        return self

    def move_answers(self, *answers: bool) -> FlowTest:
        """Whether another session takes the call at the next Move steps, one each."""
        self.moves += [bool(a) for a in answers]
        return self

    def conference_joins(self, *answers: bool) -> FlowTest:
        """Whether the caller can join the room at the next Conference steps, one each."""
        self.conferences += [bool(a) for a in answers]
        return self

    # running ------------------------------------------------------------------------------------
    def run(self) -> FlowResult:
        """Run the call on its own event loop (from a plain test function)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise FlowTestError(
                "FlowTest.run() starts an event loop of its own: in an async test, "
                "use `await FlowTest(...).run_async()`"
            )
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(self.run_async())
        finally:
            loop.close()

    async def run_async(self) -> FlowResult:
        """Run the call on the running event loop."""
        script = Script(deque(self.actions), deque(self.transfers), deque(self.moves),
                        deque(self.conferences))  # fmt: skip
        clock = VirtualClock(self.start)
        call = FakeCall(self.flow, script, clock, self.env, self.caller, self.vars)
        try:
            async with asyncio.timeout(REAL_TIMEOUT_S):
                await clock.run(_run(call))
        except Unscripted as exc:
            raise FlowTestError(f"flow {self.flow.name!r}: {exc}") from None
        except TimeoutError:
            raise FlowTestError(
                f"flow {self.flow.name!r} did not end within {REAL_TIMEOUT_S:g} s of real time "
                f"(at step {call.record.path[-1] if call.record.path else None!r}): a step "
                "waits on something real (asyncio.sleep? use `await call.sleep(s)`)"
            ) from None
        by = "caller" if call.caller_hung_up else "bot" if call.fake_bot.hung_up else ""
        return FlowResult(call.record, dict(call.vars), call.played, call.notes, by,
                          clock.elapsed, list(script.actions))  # fmt: skip


async def _run(call: FakeCall) -> None:
    """The call's run; a caller's hang-up ends it as the bot's task is ended."""
    try:
        await call.run()
    except asyncio.CancelledError:
        if not call.caller_hung_up:
            raise
