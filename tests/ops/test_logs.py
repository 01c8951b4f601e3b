"""Operator log lines as an operator reads them on stderr: timestamped text or one JSON
object per line; call events at info, internal detail only with -v (pure logic)."""

from __future__ import annotations

import datetime
import json
import logging
import re
from collections.abc import Iterator

import pytest

from ivrbot import logs
from ivrbot.flow.steps import Answer
from ivrbot.logs import call_event, shown_input

pytestmark = pytest.mark.unit

TEXT_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) (INFO|WARNING|ERROR|DEBUG) "
    r"([\w.]+): (.*)$"
)


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    names = [*logs.OPERATOR_LOGGERS, *logs.NOISY, "ivrbot.core.switch", ""]
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs.StderrHandler)]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_text_lines_carry_time_level_and_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "text")
    call_event("call-in", call="c1", caller="sip:pat@ivrbot.local", number="tel:+5550001000")
    logging.getLogger("ivrbot.serve").info("reloaded flow %s from %s", "welcome", "flows/w.py")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (TEXT_LINE.match(line) for line in lines)
    assert first and second, lines
    assert first[2] == "INFO" and first[3] == "ivrbot.calls"
    assert first[4] == "call-in call=c1 caller=sip:pat@ivrbot.local number=tel:+5550001000"
    assert second[3] == "ivrbot.serve" and second[4] == "reloaded flow welcome from flows/w.py"
    stamp = datetime.datetime.fromisoformat(first[1])
    assert abs((datetime.datetime.now(datetime.UTC) - stamp).total_seconds()) < 60


def test_json_lines_are_one_object_with_the_fields(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "json")
    call_event("input", call="c1", flow="bank", step="pin", value="<4 digits>", text=None)
    call_event("flow-end", call="c1", outcome="completed", duration_s=12.5, error="a b=c")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["level"] == "info" and first["logger"] == "ivrbot.calls"
    assert first["event"] == "input" and first["step"] == "pin" and "text" not in first
    assert first["message"] == 'input call=c1 flow=bank step=pin value="<4 digits>"'
    assert second["duration_s"] == 12.5 and second["error"] == "a b=c"
    assert datetime.datetime.fromisoformat(second["time"]).tzinfo is not None


def test_internal_detail_only_with_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    internal = logging.getLogger("ivrbot.core.switch")
    logs.configure("info", "text")
    internal.info("call x: ringing -> connected")
    call_event("step", call="c1", step="menu")
    call_event("prompt", logging.DEBUG, call="c1", text="Welcome")
    internal.warning("something is off")
    err = capsys.readouterr().err
    assert "step call=c1" in err and "something is off" in err
    assert "ringing" not in err and "Welcome" not in err

    logs.configure("info", "text", verbose=1)
    internal.info("call x: ringing -> connected")
    assert "ringing -> connected" in capsys.readouterr().err

    logs.configure("warning", "text")
    call_event("step", call="c1", step="menu")
    assert capsys.readouterr().err == ""


def test_the_process_logs_as_its_last_configure_said() -> None:
    """Media workers are started logging as their gateway does (ivrbot run -v ...)."""
    logs.configure("warning", "json", verbose=2)
    assert logs.configured() == ("warning", "json", 2)
    logs.configure("debug", "text")
    assert logs.configured() == ("debug", "text", 0)


def test_an_entry_of_several_keys_is_not_logged() -> None:
    assert shown_input("1234", "rfc4733") == "<4 digits>"
    assert shown_input("987654", "inband") == "<6 digits>"
    assert shown_input("7", "rfc4733") == "7"
    assert shown_input("menu", "asr") == "menu"


def test_a_secret_answer_is_never_shown_and_a_plain_one_always() -> None:
    """Ask(secret=True) hides one key and spoken words too; secret=False shows an entry of
    several keys (a quantity, an extension) as it is."""
    assert shown_input("7", "rfc4733", secret=True) == "<1 digit>"
    assert shown_input("123456", "inband", secret=True) == "<6 digits>"
    assert shown_input("my account number", "asr", secret=True) == "<3 words>"
    assert shown_input("yes", "asr", secret=True) == "<1 word>"
    assert shown_input("1234", "rfc4733", secret=False) == "1234"
    assert shown_input("", "rfc4733", secret=True) == ""  # nothing given: nothing to hide


def test_an_answer_is_kept_as_it_is_shown() -> None:
    """What the record, the notes and the log line get of an Ask's answer (Answer.shown)."""
    keyed = Answer("dtmf", "123456", method="inband").shown()
    assert (keyed["value"], keyed["masked"], keyed["outcome"]) == ("<6 digits>", True, "dtmf")
    spoken = Answer("speech", "yes", text="yes please", method="asr").shown(secret=True)
    assert (spoken["value"], spoken["text"], spoken["masked"]) == ("<1 word>", "<2 words>", True)
    assert Answer("dtmf", "7", method="rfc4733").shown()["value"] == "7"


def test_other_handlers_keep_what_they_get() -> None:
    """A test harness (or an embedding program) listening at INFO still gets INFO records."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logs.configure("warning", "text")
    assert root.level == logging.INFO
    logs.configure("debug", "text")
    assert root.level == logging.DEBUG
