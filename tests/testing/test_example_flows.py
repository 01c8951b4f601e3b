"""The example flows in flows/ on the test kit: a right path, a wrong key, a hang-up, and what
each flow hands on (transfers, messages, rooms), in milliseconds each."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import bank, conference, reminder, survey, voicemail, welcome
from ivrbot.flow.flow import GIVE_UP_TEXT
from ivrbot.testing.flowtest import FlowTest, FlowTestError

pytestmark = pytest.mark.unit

BANK_MENU = bank.flow.steps["menu"].prompt  # type: ignore[attr-defined]


# welcome --------------------------------------------------------------------------------------
def test_welcome_says_back_a_key_and_a_word_then_goodbye_on_silence() -> None:
    result = FlowTest(welcome.flow).press("5").say("예약").run()
    assert result.path == ["menu", "confirm", "more", "confirm", "more", "bye"]
    assert result.answers == [("menu", "dtmf", "5"), ("more", "speech", "booking"),
                              ("more", "noinput", "")]  # fmt: skip
    assert "You pressed 5." in result.prompts and "You said booking." in result.prompts
    assert result.prompts[-1] == "Goodbye." and result.outcome == "completed"


def test_welcome_takes_a_word_it_does_not_know_for_a_no_match() -> None:
    result = FlowTest(welcome.flow).say("pizza").say("아니오").hangup().run()
    assert result.answers[:2] == [("menu", "nomatch", ""), ("again", "speech", "no")]
    assert result.path == ["menu", "again", "confirm", "more"]
    assert result.outcome == "caller-hangup" and result.hung_up_by == "caller"


def test_welcome_silence_ends_the_call_politely() -> None:
    """(The no-input timer over a real call: tests/flow/test_hold.py.)"""
    result = FlowTest(welcome.flow).silence().run()
    assert result.path == ["menu", "bye"] and result.answers == [("menu", "noinput", "")]
    assert result.prompts[-1] == "Goodbye." and result.outcome == "completed"
    assert result.hung_up_by == "bot"


# bank -----------------------------------------------------------------------------------------
def test_bank_a_wrong_key_is_asked_again_then_a_balance_then_the_caller_hangs_up() -> None:
    result = FlowTest(bank.flow).press("9").press("1").press("123456#").hangup().run()
    assert result.path == ["defaults", "menu", "account", "balance", "more"]
    assert result.answers == [
        ("menu", "nomatch", "9"),
        ("menu", "dtmf", "1"),
        ("account", "dtmf", "<6 digits>"),
    ]  # on record masked
    assert result.vars["account"].value == "123456"
    assert result.prompts[:3] == [BANK_MENU, "Sorry, I did not understand.", BANK_MENU]
    assert result.heard("The balance of account 1 2 3 4 5 6 is 1523 dollars and 40 cents.")
    assert result.outcome == "caller-hangup" and not result.unused


def test_bank_two_wrong_keys_say_goodbye() -> None:
    result = FlowTest(bank.flow).press("9").press("7").run()
    assert result.path == ["defaults", "menu", "bye"]
    assert result.prompts[-1] == "Thank you for calling ivrbot bank. Goodbye."
    assert result.outcome == "completed"


def test_bank_a_spoken_word_picks_the_agent_who_answers_and_hears_the_account() -> None:
    result = FlowTest(bank.flow).say("상담원").transfer_answers(True).run()
    assert result.path == ["defaults", "menu", "agent"]
    assert result.outcome == "transferred" and result.hung_up_by == ""
    assert result.transfers[0]["target"] == bank.AGENT
    assert result.transfers[0]["announcement"] == (
        "A caller from the bank line, about account not given."
    )


def test_bank_no_agent_answers_so_the_caller_leaves_a_message() -> None:
    result = (
        FlowTest(bank.flow).press("1").press("999999").press("000000")
        .transfer_answers(False).say("please call me back").run()
    )  # fmt: skip
    assert result.path == ["defaults", "menu", "account", "balance", "account", "balance",
                           "agent", "voicemail", "thanks"]  # fmt: skip
    assert result.transfers[0]["outcome"] == "no-answer"
    assert result.heard("Sorry, all our agents are busy.")
    assert result.vars["voicemail"].outcome == "recorded" and len(result.recordings) == 1
    assert result.played == ["beep"] and result.outcome == "completed"


def test_bank_needs_the_agents_answer_scripted() -> None:
    with pytest.raises(FlowTestError, match=r"step 'agent' \(Transfer to agent@ivrbot.local\)"):
        FlowTest(bank.flow).press("2").run()


# survey ---------------------------------------------------------------------------------------
def test_survey_keeps_a_rating_a_spoken_no_and_a_comment() -> None:
    result = FlowTest(survey.flow).press("4").say("아니요").say("예약 메뉴 좋아요").run()
    assert result.vars["rating"] == 4 and result.vars["recommend"] == "no"
    assert result.vars["comment"] == "예약 메뉴 좋아요"
    assert result.path[-1] == "bye" and result.outcome == "completed"


def test_survey_a_rating_out_of_range_is_asked_once_more_then_skipped() -> None:
    result = FlowTest(survey.flow).press("7").press("8").press("1").run()
    assert result.path[:5] == ["q1_rating", "rating", "rating_again", "q1_rating", "rating"]
    assert result.vars["rating"] is None and result.vars["recommend"] == "yes"
    assert result.vars["comment"] == ""  # silence: no comment


# reminder and voicemail: what the caller (or the campaign) brings -----------------------------
def test_reminder_opt_out_and_a_machine() -> None:
    person = FlowTest(reminder.flow).press("9").run()
    assert person.vars["result"] == "opted-out" and person.path[-1] == "opted_out"
    assert person.outcome == "opted-out"  # README "Outcomes": the flow's result says so
    machine = FlowTest(reminder.flow, vars={"answered_by": "machine"}).run()
    assert machine.path == ["start", "voicemail", "message"] and not machine.inputs
    assert machine.vars["result"] == "voicemail" and machine.outcome == "machine"


def test_voicemail_closed_takes_a_message_open_offers_one() -> None:
    closed = FlowTest(voicemail.flow, env={"IVRBOT_NOW": "2025-01-11T20:00"})
    result = closed.say("hello it is Pat").run()
    assert result.path == ["hours", "closed", "message", "thanks"]
    assert result.vars["open"] is False and result.vars["message"].outcome == "recorded"
    opened = FlowTest(voicemail.flow, env={"IVRBOT_NOW": "2025-01-06T10:00"}).press("2").run()
    assert opened.path == ["hours", "offer", "anyway", "bye"] and opened.vars["open"] is True


def test_voicemail_silence_after_the_beep_is_no_message() -> None:
    result = FlowTest(voicemail.flow, env={"IVRBOT_NOW": "2025-01-11T20:00"}).silence().run()
    assert result.path == ["hours", "closed", "message", "bye"]
    assert result.answers[-1] == ("message", "noinput", "") and not result.recordings


# conference -----------------------------------------------------------------------------------
def test_conference_a_short_pin_then_a_known_one_joins_its_room() -> None:
    result = FlowTest(conference.flow).press("12#").press("1234").conference_joins(True).run()
    assert result.answers == [("pin", "nomatch", "<2 digits>"), ("pin", "dtmf", "<4 digits>")]
    assert result.vars["pin"].value == "1234"
    assert result.heard("A PIN has four digits.")
    assert result.conferences == [{"step": "enter", "room": "team", "mode": "leave",
                                   "outcome": "joined", "reason": "", "others": []}]  # fmt: skip
    assert result.outcome == "conferenced"


def test_conference_that_cannot_be_joined_says_sorry() -> None:
    result = FlowTest(conference.flow).press("5678").conference_joins(False).run()
    assert result.path[-2:] == ["enter", "bye"]
    assert result.heard("Sorry, the conference cannot be joined now.")
    assert result.prompts[-1] == "Goodbye." and result.outcome == "completed"


def test_a_flow_file_loads_by_its_path() -> None:
    result = FlowTest("flows/welcome.py").silence().run()
    assert result.path == ["menu", "bye"] and GIVE_UP_TEXT not in result.prompts


def test_the_readmes_example_runs() -> None:
    """The example in README.md's "Testing your flows in milliseconds" passes as written."""
    readme = Path(__file__).parents[2] / "README.md"
    section = readme.read_text(encoding="utf-8").split("### Testing your flows in milliseconds")[1]
    code = section.split("```python\n")[1].split("```")[0]
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    tests = [f for name, f in scope.items() if name.startswith("test_") and callable(f)]
    assert len(tests) == 2
    for test in tests:
        test()
