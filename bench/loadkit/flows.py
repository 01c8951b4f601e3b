"""The two flows the load harness serves: a DTMF menu and a Korean speech grammar.

Wrong input never ends a call: it goes at once (``Retry(attempts=1)``) to a ``fail`` step
that asks again forever, so a call only counts as completed when the bot hangs up after the
goodbye of the right path.
"""

from __future__ import annotations

from pathlib import Path

MENU_NUMBER = "5550001090"
SPEECH_NUMBER = "5550001091"

MENU_FLOW = '''"""Load test: a DTMF menu (written by bench/load.py)."""

from ivrbot.flow import Flow, Hangup, Menu, Retry, Say

flow = Flow(
    "loadmenu", number="{number}", description="bench/load.py DTMF menu", retry=Retry(attempts=1)
)
HOLD_S = {hold_s}
flow.add(
    Say("hello", "Welcome to the load test.", next="main"),
    Menu(
        "main",
        "For sales, press 1. For support, press 2.",
        options={{"1": "sales", "2": "support"}},
        timeout_s=15,
        no_input="fail",
        no_match="fail",
    ),
    Menu(
        "sales",
        "Sales. Press 3 to finish.",
        options={{"3": "bye"}},
        timeout_s=HOLD_S + 15,
        no_input="fail",
        no_match="fail",
    ),
    Menu(
        "support",
        "Support. Press 3 to finish.",
        options={{"3": "bye"}},
        timeout_s=HOLD_S + 15,
        no_input="fail",
        no_match="fail",
    ),
    Menu(
        "fail",
        "Sorry, that was not expected.",
        options={{"0": "fail"}},
        timeout_s=60,
        no_input="fail",
        no_match="fail",
    ),
    Hangup("bye", "Thank you for calling. Goodbye."),
)
'''

SPEECH_FLOW = '''"""Load test: a speech grammar in Korean (written by bench/load.py)."""

from ivrbot.flow import Flow, Hangup, Menu, Retry

flow = Flow(
    "loadspeech", number="{number}", description="bench/load.py speech menu", language="ko",
    retry=Retry(attempts=1),
)
HOLD_S = {hold_s}
WORDS = {{"예약": "booking", "메뉴": "menu", "아니요": "no", "아니오": "no"}}
flow.add(
    Menu(
        "main",
        "Welcome. Please say a word.",
        choices=WORDS,
        options={{"booking": "booking", "menu": "fail", "no": "fail"}},
        timeout_s=15,
        no_input="fail",
        no_match="fail",
    ),
    Menu(
        "booking",
        "Booking. Say no to finish.",
        choices=WORDS,
        options={{"no": "bye", "booking": "fail", "menu": "fail"}},
        timeout_s=HOLD_S + 15,
        no_input="fail",
        no_match="fail",
    ),
    Menu(
        "fail",
        "Sorry, that was not expected.",
        choices=WORDS,
        options={{"no": "fail", "booking": "fail", "menu": "fail"}},
        timeout_s=60,
        no_input="fail",
        no_match="fail",
    ),
    Hangup("bye", "Thank you for calling. Goodbye."),
)
'''


def write_flows(folder: Path, hold_s: float) -> None:
    """Write both flows into ``folder`` (``hold_s``: how long a caller may wait at the
    second menu before its second input)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "loadmenu.py").write_text(MENU_FLOW.format(number=MENU_NUMBER, hold_s=hold_s))
    (folder / "loadspeech.py").write_text(SPEECH_FLOW.format(number=SPEECH_NUMBER, hold_s=hold_s))
