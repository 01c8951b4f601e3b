"""The test kit itself: keys and words taken as the real Ask takes them, virtual time, the
outcomes a user checks, and one clear error for what it cannot run."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from ivrbot.flow import Ask, Flow, FlowCall, Hangup, Menu, Move, Play, Retry, Say
from ivrbot.flow.media_steps import read_audio
from ivrbot.testing.flowtest import FlowTest, FlowTestError

pytestmark = pytest.mark.unit


def entry(**ask: object) -> Flow:
    """A six-digit entry, then a one-key question (what a leftover key would answer)."""
    flow = Flow("entry", number="5550001030", retry=Retry(attempts=1))
    flow.add(
        Ask("account", "Your account number.", digits=6, no_input="next_q", no_match="next_q",
            **ask),  # type: ignore[arg-type]
        Ask("next_q", "Press any key.", no_input="done"),
        Hangup("done", "Bye."),
    )  # fmt: skip
    return flow


def test_a_full_entry_drops_its_finish_key_and_extra_keys_answer_the_next_question() -> None:
    full = FlowTest(entry()).press("123456#").run()
    assert full.vars["account"].value == "123456" and full.answers[1] == ("next_q", "noinput", "")
    ahead = FlowTest(entry()).press("12345678").run()  # typed ahead: '78'
    assert ahead.vars["account"].value == "123456" and ahead.vars["next_q"].value == "7"
    assert [type(a).__name__ for a in ahead.unused] == ["Keys"]  # the '8' was never asked for


def test_the_finish_key_ends_an_entry_early_and_min_digits_judges_it() -> None:
    short = FlowTest(entry(min_digits=4)).press("12#").run()
    assert short.answers[0] == ("account", "nomatch", "<2 digits>")  # on record: masked
    early = FlowTest(entry()).press("12#").run()
    assert early.answers[0][1] == "dtmf" and early.vars["account"].value == "12"
    assert early.elapsed_s < FlowTest(entry()).press("12").run().elapsed_s  # no inter-digit wait


def test_a_question_times_out_on_virtual_time() -> None:
    flow = Flow("timeout", number="5550001031", retry=Retry(attempts=1))
    flow.add(Ask("q", "Press 1.", timeout_s=5, no_input="bye", next="ok"),
             Hangup("ok", "OK."), Hangup("bye", "Bye."))  # fmt: skip
    in_time = FlowTest(flow).silence(4).press("1").run()
    assert in_time.path == ["q", "ok"]
    late = FlowTest(flow).silence(6).press("1").run()
    assert late.path == ["q", "bye"] and late.answers == [("q", "noinput", "")]
    assert late.elapsed_s > 5 and late.record.ended_at == pytest.approx(
        late.record.started_at + late.elapsed_s
    )


def test_a_python_step_sleeps_on_the_flows_clock() -> None:
    flow = Flow("pause", number="5550001032")

    @flow.step("wait", goes_to=["bye"])
    async def wait(call: FlowCall) -> str:
        await call.sleep(120)
        return "bye"

    flow.add(Hangup("bye", "Thanks for waiting."))
    result = FlowTest(flow, start=1_700_000_000.0).run()
    assert result.elapsed_s >= 120 and result.record.started_at == 1_700_000_000.0
    assert result.record.prompts_at[0] >= 1_700_000_120.0


def test_words_are_judged_by_the_grammar_and_lost_on_a_keys_only_question() -> None:
    flow = Flow("words", number="5550001033", retry=Retry(attempts=1))
    flow.add(
        Menu("menu", "Say balance or agent.", choices={"balance": "1", "talk to agent": "2"},
             options={"1": "ok", "2": "ok"}, no_match="bye", no_input="bye"),
        Hangup("ok", "OK."), Hangup("bye", "Bye."),
    )  # fmt: skip
    phrase = FlowTest(flow).say("I want to talk to agent please").run()
    assert phrase.inputs[0]["value"] == "2" and phrase.inputs[0]["text"].startswith("I want")
    assert FlowTest(flow).say("agent").run().answers[0] == ("menu", "nomatch", "")
    keys = Flow("keys", number="5550001040", retry=Retry(attempts=1))
    keys.add(Ask("key", "Press a key.", next="ok"), Hangup("ok", "OK."))
    lost = FlowTest(keys).say("one").press("1").run()  # the Ask takes keys only
    assert lost.answers == [("key", "dtmf", "1")]
    assert ("not listening", {"step": "key", "words": "one"}) in lost.notes


def test_an_error_names_the_step_and_the_caller_hears_the_apology() -> None:
    flow = Flow("broken", number="5550001034")

    @flow.step("lookup", goes_to=["bye"])
    async def lookup(call: FlowCall) -> str:
        raise KeyError("account")

    flow.add(Hangup("bye", "Bye."))
    result = FlowTest(flow).run()
    assert result.outcome == "error" and result.error_step == "lookup"
    assert result.error.startswith("step lookup: KeyError: 'account'")
    assert result.prompts == [flow.apology] and result.hung_up_by == "bot"


def test_a_hang_up_ends_the_call_when_the_flow_next_listens() -> None:
    flow = Flow("hang", number="5550001035")
    flow.add(Say("hi", "Hello."), Ask("q", "Press 1.", next="bye"), Hangup("bye", "Bye."))
    result = FlowTest(flow).hangup().run()
    assert result.path == ["hi", "q"] and result.prompts == ["Hello.", "Press 1."]
    assert result.outcome == "caller-hangup" and result.hung_up_by == "caller" and not result.inputs


def test_a_move_and_a_play_step(tmp_path: Path) -> None:
    sound = tmp_path / "chime.wav"
    with wave.open(str(sound), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(8000)
        out.writeframes(np.zeros(8000, np.int16).tobytes())  # one second
    flow = Flow("moving", number="5550001036")
    flow.add(Play("chime", str(sound)), Move("away", fallback="bye"), Hangup("bye", "Bye."))
    moved = FlowTest(flow).move_answers(True).run()
    assert moved.played == ["chime.wav"] and moved.outcome == "moved"
    assert moved.transfers[0]["target"] == "vtn:5550001036" and moved.path == ["chime", "away"]
    stayed = FlowTest(flow).move_answers(False).run()
    assert stayed.path == ["chime", "away", "bye"] and stayed.transfers[0]["outcome"] == "failed"
    assert read_audio(sound).size  # the file Play read is a real one


def test_what_the_kit_cannot_run_is_one_clear_error() -> None:
    flow = Flow("rec", number="5550001037")

    @flow.step("rec", goes_to=["bye"])
    async def rec(call: FlowCall) -> str:
        await call.start_recording()
        return "bye"

    flow.add(Hangup("bye", "Bye."))
    with pytest.raises(FlowTestError, match=r"records the call.*no audio to record"):
        FlowTest(flow).run()
    with pytest.raises(FlowTestError, match="move_answers"):
        FlowTest(Flow("m", number="5550001038").add(Move("away"))).run()
    with pytest.raises(FlowTestError, match=r"press\('x'\): give keypad keys"):
        FlowTest(flow).press("x")
    with pytest.raises(FlowTestError, match="transfer_answers\\('maybe'\\)"):
        FlowTest(flow).transfer_answers("maybe")


async def test_in_an_async_test_run_async_and_not_run() -> None:
    flow = Flow("async", number="5550001039")
    flow.add(Ask("q", "Press 1.", next="bye"), Hangup("bye", "Bye."))
    assert (await FlowTest(flow).press("1").run_async()).path == ["q", "bye"]
    with pytest.raises(FlowTestError, match="await FlowTest"):
        FlowTest(flow).run()
