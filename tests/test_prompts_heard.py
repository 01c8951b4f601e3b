"""The caller's report names the prompts it heard: spans of speech it heard, matched with
the times the bot began each prompt (its record); the timeline entries get the text."""

from __future__ import annotations

import time

import pytest

from ivrbot.testing.caller import texts_heard
from ivrbot.timeline import Timeline

pytestmark = pytest.mark.unit


def test_each_span_gets_the_prompts_begun_before_it_ended() -> None:
    heard = [(10.1, 12.6), (14.0, 17.3), (20.0, 21.0)]
    said = [
        (10.0, "Welcome."),
        (13.9, "You pressed 7."),  # said back to back: heard as one span
        (15.0, "Anything else?"),
        (19.9, "Goodbye."),
        (30.0, "Never heard: the caller had gone."),
    ]
    assert texts_heard(heard, said) == ["Welcome.", "You pressed 7. Anything else?", "Goodbye."]


def test_a_span_with_no_prompt_of_the_record_has_no_text() -> None:
    # a span before the bot's first prompt (ringback, music): no text is made up for it
    assert texts_heard([(1.0, 2.0), (5.0, 6.0)], [(4.9, "Hello.")]) == ["", "Hello."]
    assert texts_heard([(1.0, 2.0)], []) == [""]


def test_timeline_entries_noted_afterwards_and_amended_keep_their_order() -> None:
    timeline = Timeline()
    first = timeline.add("caller", "dialing")
    time.sleep(0.02)
    last = timeline.add("caller", "hangup")
    heard = timeline.add_at(timeline.start + 0.01, "caller", "heard prompt", seconds=0.5)
    assert [e.event for e in timeline.entries] == ["dialing", "heard prompt", "hangup"]
    amended = timeline.amend(heard, text="Goodbye.")
    assert timeline.entries[1] is amended and amended.to_dict()["text"] == "Goodbye."
    assert amended.to_dict()["seconds"] == 0.5 and amended.t_ms == heard.t_ms
    assert timeline.entries[0] is first and timeline.entries[2] is last
