"""Counted no-input handling with escalating prompts (VoiceXML's <noinput count=...>): which
prompt comes when is logic, proven on the flow test kit (virtual time). A real caller's
silence timing out over media: tests/flow/test_welcome.py, tests/flow/test_hold.py."""

from __future__ import annotations

import pytest

from ivrbot.flow import Ask, Flow, Hangup, Retry
from ivrbot.testing.flowtest import FlowTest

pytestmark = pytest.mark.unit


def patient_flow() -> Flow:
    flow = Flow(
        "patient",
        number="5550001002",
        retry=Retry(
            attempts=3, no_input_prompts=("I did not hear you.", "Please press a key now.")
        ),
    )
    flow.add(
        Ask("pin", "Your pin?", digits=1, timeout_s=1.0, next="thanks", no_input="bye"),
        Hangup("thanks", "Thanks."),
        Hangup("bye", "Goodbye."),
    )
    return flow


def test_silence_gets_escalating_prompts_then_goodbye() -> None:
    result = FlowTest(patient_flow()).silence().silence().silence().run()
    assert result.prompts == [
        "Your pin?", "I did not hear you.", "Your pin?", "Please press a key now.", "Your pin?",
        "Goodbye.",
    ]  # fmt: skip
    assert [i["outcome"] for i in result.inputs] == ["noinput"] * 3
    assert result.path == ["pin", "bye"]
    assert result.elapsed_s >= 3.0  # three turns of its 1 s timeout, on the virtual clock


def test_a_key_on_the_second_attempt_goes_on() -> None:
    result = FlowTest(patient_flow()).silence().press("4").run()
    assert [i["outcome"] for i in result.inputs] == ["noinput", "dtmf"]
    assert result.record.digits == "4" and result.path == ["pin", "thanks"]
    assert result.prompts == ["Your pin?", "I did not hear you.", "Your pin?", "Thanks."]
