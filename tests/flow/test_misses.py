"""A caller's mistake never acts for them: a no-input or no-match at a Menu or an Ask is asked
again (3 attempts by default), then goes to ``no_input`` / ``no_match``, or, without one, to
an apology and a hang-up (the record's outcome ``no-input`` / ``no-match``): never to an
option's step, to ``next``, or to the next step in the file.

Which step runs after an answer is pure logic: these tests run the real ``FlowCall.run``
loop and the real steps, with a caller whose answers are scripted (no media). The pizza case
over real media, a caller pressing keys over WebRTC, is at the end (slow).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from ivrbot.flow import Answer, Ask, Flow, FlowCall, FlowError, Hangup, Menu, Retry, Say
from ivrbot.flow.flow import GIVE_UP_TEXT
from ivrbot.flow.runner import Bot
from ivrbot.flow.steps import GIVE_UP
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.tts import Synthesizer
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller

SIZE = "Press 1 for a small pizza, or 2 for a large one."
CONFIRM = "Press 1 to place the order, or 2 to start over."
ORDERED = "Your pizza is on its way. Goodbye."


def pizza(**confirm: Any) -> Flow:
    """The issue's pizza flow: ``ordered`` follows ``confirm`` in the file."""
    flow = Flow("pizza", number="5550001020")
    flow.add(
        Menu("size", SIZE, options={"1": "confirm", "2": "confirm"}, no_input="bye"),
        Menu("confirm", CONFIRM, options={"1": "ordered", "2": "size"}, no_input="bye", **confirm),
        Hangup("ordered", ORDERED),
        Hangup("bye", "Goodbye."),
    )
    return flow


class ScriptedCall(FlowCall):
    """A FlowCall whose caller's answers are scripted (a unit fake: no media). Prompts are
    recorded as spoken; an Ask takes the next answer (none left: no input) as the real one
    does: judged by the step, kept in the record."""

    def __init__(self, flow: Flow, *answers: Answer) -> None:
        bot = SimpleNamespace(flow=flow, hangup=self._bot_hangup)
        super().__init__(
            cast(Any, bot), cast(Any, SimpleNamespace(peer="sip:pat@x")), cast(Any, None)
        )
        self.answers = deque(answers)
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.bot_hung_up = False

    async def _bot_hangup(self, flow_call: FlowCall) -> None:
        self.bot_hung_up = True

    def note(self, event: str, **detail: Any) -> None:
        self.notes.append((event, detail))

    async def say(self, text: str, voice: str | None = None, barge_in: bool = False) -> None:
        self.record.prompts.append(text)

    async def ask(self, step: Ask) -> Answer:
        self.record.prompts.append(step.prompt)
        answer = step.judge(self.answers.popleft() if self.answers else Answer("noinput"))
        self.last_answer = answer
        self.record.inputs.append({"step": step.name, **answer.to_dict()})
        return answer


def key(digits: str) -> Answer:
    return Answer("dtmf", digits, method="rfc4733")


async def run(flow: Flow, *answers: Answer) -> ScriptedCall:
    call = ScriptedCall(flow, *answers)
    await call.run()
    return call


def outcomes(call: FlowCall) -> list[tuple[str, str, str]]:
    return [(i["step"], i["outcome"], i["value"]) for i in call.record.inputs]


async def test_a_wrong_key_is_asked_again_then_the_bot_apologises_and_hangs_up() -> None:
    call = await run(pizza(), key("1"), key("9"), key("9"), key("9"))
    assert outcomes(call) == [("size", "dtmf", "1")] + [("confirm", "nomatch", "9")] * 3
    assert call.record.prompts == [SIZE, CONFIRM, CONFIRM, CONFIRM, GIVE_UP_TEXT]
    assert call.record.path == ["size", "confirm"]  # never 'ordered', never 'size' again
    assert call.record.outcome == "no-match"
    assert (
        call.bot_hung_up and ("give up", {"step": "confirm", "outcome": "no-match"}) in call.notes
    )


async def test_a_right_key_on_the_last_attempt_is_taken() -> None:
    call = await run(pizza(), key("1"), key("9"), key("*"), key("1"))
    assert call.record.path == ["size", "confirm", "ordered"]
    assert call.record.prompts[-1] == ORDERED and call.record.outcome == "completed"


async def test_a_menu_with_no_match_goes_there_after_the_retries() -> None:
    flow = pizza(no_match="sorry", retry=Retry(attempts=2, no_match_prompts=("Not a choice.",)))
    flow.add(Hangup("sorry", "Sorry. Please call again."))
    call = await run(flow, key("2"), key("5"), key("5"))
    assert call.record.prompts == [SIZE, CONFIRM, "Not a choice.", CONFIRM,
                                   "Sorry. Please call again."]  # fmt: skip
    assert call.record.path == ["size", "confirm", "sorry"]
    assert call.record.outcome == "completed"


async def test_silence_after_the_retries_goes_to_no_input() -> None:
    call = await run(pizza(), key("1"))  # then nothing
    assert outcomes(call)[1:] == [("confirm", "noinput", "")] * 3
    assert call.record.path == ["size", "confirm", "bye"]
    assert call.record.prompts == [SIZE, CONFIRM, CONFIRM, CONFIRM, "Goodbye."]


async def test_silence_with_no_no_input_gives_up_with_outcome_no_input() -> None:
    flow = Flow("pin", number="5550001021")
    flow.add(
        Ask("pin", "Your PIN, then pound.", digits=4, next="thanks"),
        Hangup("thanks", "Thanks."),
    )
    call = await run(flow)
    assert [i["outcome"] for i in call.record.inputs] == ["noinput"] * 3
    assert call.record.path == ["pin"]  # not 'thanks' (next, and the next step in the file)
    assert call.record.prompts[-1] == GIVE_UP_TEXT
    assert call.record.outcome == "no-input" and call.bot_hung_up


async def test_an_ask_takes_next_only_for_a_usable_answer() -> None:
    flow = Flow("pin", number="5550001021", give_up="Goodbye for now.")
    flow.add(
        Ask("pin", "Your PIN, then pound.", digits=4, min_digits=4, next="thanks"),
        Hangup("thanks", "Thanks."),
    )
    short = await run(flow, key("12"), key("3"), key(""))  # too short, too short, only '#'
    assert [i["outcome"] for i in short.record.inputs] == ["nomatch"] * 3
    assert short.record.path == ["pin"] and short.record.outcome == "no-match"
    assert short.record.prompts[-1] == "Goodbye for now."
    good = await run(flow, key("12"), key("1234"))
    assert good.record.path == ["pin", "thanks"] and good.vars["pin"].value == "1234"


async def test_a_spoken_word_out_of_the_grammar_is_a_no_match_too() -> None:
    flow = Flow("yes", number="5550001022")
    flow.add(
        Ask(
            "q",
            "Yes or no?",
            digits=0,
            choices={"yes": "yes", "no": "no"},
            next="ok",
            no_input="ok",
        ),
        Say("ok", "OK."),
    )
    missed = Answer("nomatch", text="maybe", confidence=0.4, method="asr")
    call = await run(flow, missed, missed, missed)
    assert call.record.path == ["q"] and call.record.outcome == "no-match"
    said = Answer("speech", "yes", "yes", 0.9, "asr")
    assert (await run(flow, missed, said)).record.path == ["q", "ok"]


async def test_one_attempt_and_a_silent_give_up_are_the_flows_to_choose() -> None:
    flow = pizza(retry=Retry(attempts=1))
    flow.give_up = ""
    call = await run(flow, key("1"), key("9"))
    assert call.record.prompts == [SIZE, CONFIRM]  # asked once, no apology
    assert call.record.outcome == "no-match" and call.bot_hung_up


def test_the_defaults_are_three_attempts_and_a_spoken_apology() -> None:
    flow = pizza()
    assert flow.retry.attempts == 3 and Retry().attempts == 3
    assert flow.give_up == GIVE_UP_TEXT == "Sorry, I could not understand. Goodbye."
    assert GIVE_UP_TEXT in flow.prompts()  # synthesised when the bot starts
    assert "Bye now." in Flow("f", number="5550001023", give_up="Bye now.").prompts()
    assert GIVE_UP_TEXT not in Flow("f", number="5550001023", give_up="").prompts()


def test_the_give_up_end_is_no_step_name() -> None:
    with pytest.raises(FlowError, match=r"'\(give up\)' is not a step name"):
        Flow("f", number="5550001023").add(Hangup(GIVE_UP))
    with pytest.raises(FlowError, match="give_up must be text"):
        Flow("f", number="5550001023", give_up=None)  # type: ignore[arg-type]


# over real media ------------------------------------------------------------------------------
@pytest.mark.slow
async def test_pizza_wrong_key_over_webrtc_never_places_the_order(
    gateway: GatewayServer, tts: Synthesizer, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: the caller presses 9 at 'confirm' three times; each time the menu
    is asked again, then the caller hears the apology and the bot hangs up."""
    caplog.set_level(logging.INFO, logger="ivrbot.calls")
    flow = pizza()
    bot = Bot(flow, gateway.url, tts)
    await bot.start()
    caller = SimulatedCaller(gateway.url, tts)
    try:
        await caller.dial("5550001020")
        await caller.hear_prompt(silence_s=0.6)  # the sizes
        await caller.press("1")
        for _ in range(3):
            await caller.hear_prompt(silence_s=0.6)  # confirm: asked, then asked again
            await caller.press("9")
        async with asyncio.timeout(20):
            await caller.disconnected.wait()  # the bot hung up
        await bot.wait_records()
    finally:
        await caller.close()
        await bot.stop()
    record = bot.records[0]
    assert [(i["step"], i["outcome"], i["value"]) for i in record.inputs] == [
        ("size", "dtmf", "1"), *[("confirm", "nomatch", "9")] * 3,
    ]  # fmt: skip
    assert record.prompts == [SIZE, CONFIRM, CONFIRM, CONFIRM, GIVE_UP_TEXT]
    assert "ordered" not in record.path and record.path == ["size", "confirm"]
    assert record.outcome == "no-match"
    # the caller heard the apology: speech all through its playback (Opus delays ~0.1 s)
    apology = bot.finished[0].playbacks[-1]
    assert apology.label == GIVE_UP_TEXT and apology.started_at and apology.ended_at
    during = caller.ear.level_between(apology.started_at + 0.25, apology.ended_at)
    assert len(during) > 20 and np.mean(np.array(during) > SPEECH_DB) > 0.6, "no apology heard"
    ends = [r.getMessage() for r in caplog.records if "flow-end" in r.getMessage()]
    assert len(ends) == 1 and "outcome=no-match" in ends[0], ends
