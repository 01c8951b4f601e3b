"""Complete / incomplete speech timeouts: per Ask, per flow, checked, and what a turn gets."""

from __future__ import annotations

import pytest

from ivrbot.errors import FlowError
from ivrbot.flow import Ask, Flow, Hangup, Menu
from ivrbot.flow.call import speech_endpoints_ms

pytestmark = pytest.mark.unit

CHOICES = {"예약": "booking", "메뉴": "menu"}


def test_the_flow_gives_the_defaults_and_an_ask_overrides_them() -> None:
    flow = Flow("t", number="5550001200")
    ask = Ask("q", "Say a word.", choices=CHOICES)
    assert ask.speech_timeouts(flow) == (0.15, 0.3)
    assert speech_endpoints_ms(ask, flow) == (300, 150)

    slow = Flow("t2", number="5550001201", complete_timeout_s=0.4, incomplete_timeout_s=1.2)
    assert speech_endpoints_ms(ask, slow) == (1200, 400)
    own = Menu("m", "Say a word.", choices=CHOICES, options={"booking": "bye"},
               complete_timeout_s=0.1, incomplete_timeout_s=0.5)  # fmt: skip
    assert speech_endpoints_ms(own, slow) == (500, 100)
    only_complete = Ask("q", "Say a word.", choices=CHOICES, complete_timeout_s=0.2)
    assert speech_endpoints_ms(only_complete, slow) == (1200, 200)


def test_no_complete_timeout_when_it_would_not_end_a_turn_sooner() -> None:
    flow = Flow("t", number="5550001200")
    same = Ask("q", "Say a word.", choices=CHOICES, complete_timeout_s=0.3)
    assert speech_endpoints_ms(same, flow) == (300, None)
    longer = Ask("q", "Say a word.", choices=CHOICES, complete_timeout_s=0.5)
    assert speech_endpoints_ms(longer, flow) == (300, None)
    free = Ask("q", "Say anything.", digits=0, free_form=True)
    assert speech_endpoints_ms(free, flow) == (300, None)


@pytest.mark.parametrize("value", [0, -0.1, True, "0.2"])
def test_bad_flow_timeouts_are_errors(value: object) -> None:
    with pytest.raises(FlowError, match="complete_timeout_s"):
        Flow("t", number="5550001200", complete_timeout_s=value)  # type: ignore[arg-type]
    with pytest.raises(FlowError, match="incomplete_timeout_s"):
        Flow("t", number="5550001200", incomplete_timeout_s=value)  # type: ignore[arg-type]


def test_bad_ask_timeouts_are_check_errors() -> None:
    flow = Flow("t", number="5550001200")
    ask = Ask("q", "Say a word.", choices=CHOICES, complete_timeout_s=0, incomplete_timeout_s=-1)
    flow.add(ask, Hangup("bye"))
    messages = [p.message for p in ask.check(flow)]
    assert any("complete_timeout_s must be a positive number" in m for m in messages)
    assert any("incomplete_timeout_s must be a positive number" in m for m in messages)
    fine = Ask("q2", "Say a word.", choices=CHOICES, complete_timeout_s=0.12)
    assert fine.check(flow) == []
