"""A caller's mistake never acts for them: a no-input or no-match at a Menu or an Ask is asked
again (3 attempts by default), then goes to ``no_input`` / ``no_match``, or, without one, to
an apology and a hang-up (the record's outcome ``no-input`` / ``no-match``): never to an
option's step, to ``next``, or to the next step in the file.

Which step runs after an answer is pure logic: these tests run the flow on the test kit
(:mod:`ivrbot.testing.flowtest`: the real ``FlowCall.run`` loop and the real steps, a scripted
caller, virtual time, no media). The pizza case over real media, a caller pressing keys over
WebRTC, is at the end (slow).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest

from ivrbot.flow import Ask, Flow, FlowError, Hangup, Menu, Retry, Say
from ivrbot.flow.flow import GIVE_UP_TEXT
from ivrbot.flow.runner import Bot
from ivrbot.flow.steps import GIVE_UP
from ivrbot.speech.tts import Synthesizer
from ivrbot.testing.caller import SPEECH_DB, SimulatedCaller
from ivrbot.testing.flowtest import FlowResult, FlowTest
from ivrbot.wire.server import GatewayServer

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


def run(flow: Flow, *keys: str) -> FlowResult:
    """A call to ``flow`` by a caller who presses each of ``keys`` in turn, then is silent."""
    test = FlowTest(flow)
    for k in keys:
        test.press(k)
    return test.run()


@pytest.mark.unit
def test_a_wrong_key_is_asked_again_then_the_bot_apologises_and_hangs_up() -> None:
    call = run(pizza(), "1", "9", "9", "9")
    assert call.answers == [("size", "dtmf", "1")] + [("confirm", "nomatch", "9")] * 3
    assert call.prompts == [SIZE, CONFIRM, CONFIRM, CONFIRM, GIVE_UP_TEXT]
    assert call.path == ["size", "confirm"]  # never 'ordered', never 'size' again
    assert call.outcome == "no-match"
    assert call.hung_up_by == "bot"
    assert ("give up", {"step": "confirm", "outcome": "no-match"}) in call.notes


@pytest.mark.unit
def test_a_right_key_on_the_last_attempt_is_taken() -> None:
    call = run(pizza(), "1", "9", "*", "1")
    assert call.path == ["size", "confirm", "ordered"]
    assert call.prompts[-1] == ORDERED and call.outcome == "completed"


@pytest.mark.unit
def test_a_menu_with_no_match_goes_there_after_the_retries() -> None:
    flow = pizza(no_match="sorry", retry=Retry(attempts=2, no_match_prompts=("Not a choice.",)))
    flow.add(Hangup("sorry", "Sorry. Please call again."))
    call = run(flow, "2", "5", "5")
    assert call.prompts == [SIZE, CONFIRM, "Not a choice.", CONFIRM,
                            "Sorry. Please call again."]  # fmt: skip
    assert call.path == ["size", "confirm", "sorry"]
    assert call.outcome == "completed"


@pytest.mark.unit
def test_silence_after_the_retries_goes_to_no_input() -> None:
    call = run(pizza(), "1")  # then nothing
    assert call.answers[1:] == [("confirm", "noinput", "")] * 3
    assert call.path == ["size", "confirm", "bye"]
    assert call.prompts == [SIZE, CONFIRM, CONFIRM, CONFIRM, "Goodbye."]


@pytest.mark.unit
def test_silence_with_no_no_input_gives_up_with_outcome_no_input() -> None:
    flow = Flow("pin", number="5550001021")
    flow.add(
        Ask("pin", "Your PIN, then pound.", digits=4, next="thanks"),
        Hangup("thanks", "Thanks."),
    )
    call = run(flow)
    assert [i["outcome"] for i in call.inputs] == ["noinput"] * 3
    assert call.path == ["pin"]  # not 'thanks' (next, and the next step in the file)
    assert call.prompts[-1] == GIVE_UP_TEXT
    assert call.outcome == "no-input" and call.hung_up_by == "bot"


@pytest.mark.unit
def test_an_ask_takes_next_only_for_a_usable_answer() -> None:
    flow = Flow("pin", number="5550001021", give_up="Goodbye for now.")
    flow.add(
        Ask("pin", "Your PIN, then pound.", digits=4, min_digits=4, next="thanks"),
        Hangup("thanks", "Thanks."),
    )
    short = run(flow, "12", "3", "#")  # too short, too short, only '#'
    assert [i["outcome"] for i in short.inputs] == ["nomatch"] * 3
    assert short.path == ["pin"] and short.outcome == "no-match"
    assert short.prompts[-1] == "Goodbye for now."
    good = run(flow, "12", "1234")
    assert good.path == ["pin", "thanks"] and good.vars["pin"].value == "1234"


@pytest.mark.unit
def test_a_spoken_word_out_of_the_grammar_is_a_no_match_too() -> None:
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
    call = FlowTest(flow).say("maybe").say("maybe").say("maybe").run()
    assert call.path == ["q"] and call.outcome == "no-match"
    assert FlowTest(flow).say("maybe").say("yes").run().path == ["q", "ok"]


@pytest.mark.unit
def test_one_attempt_and_a_silent_give_up_are_the_flows_to_choose() -> None:
    flow = pizza(retry=Retry(attempts=1))
    flow.give_up = ""
    call = run(flow, "1", "9")
    assert call.prompts == [SIZE, CONFIRM]  # asked once, no apology
    assert call.outcome == "no-match" and call.hung_up_by == "bot"


@pytest.mark.unit
def test_the_defaults_are_three_attempts_and_a_spoken_apology() -> None:
    flow = pizza()
    assert flow.retry.attempts == 3 and Retry().attempts == 3
    assert flow.give_up == GIVE_UP_TEXT == "Sorry, I could not understand. Goodbye."
    assert GIVE_UP_TEXT in flow.prompts()  # synthesised when the bot starts
    assert "Bye now." in Flow("f", number="5550001023", give_up="Bye now.").prompts()
    assert GIVE_UP_TEXT not in Flow("f", number="5550001023", give_up="").prompts()


@pytest.mark.unit
def test_the_give_up_end_is_no_step_name() -> None:
    with pytest.raises(FlowError, match=r"'\(give up\)' is not a step name"):
        Flow("f", number="5550001023").add(Hangup(GIVE_UP))
    with pytest.raises(FlowError, match="give_up must be text"):
        Flow("f", number="5550001023", give_up=None)  # type: ignore[arg-type]


# over real media ------------------------------------------------------------------------------
@pytest.mark.e2e
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
