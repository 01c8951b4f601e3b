"""Operator logging: one line per call event that matters, with timestamps, as text or JSON.

Call events go to the ``ivrbot.calls`` logger at INFO (call in, flow answered, step, input,
transfer, flow end, call end) through :func:`call_event`, campaign events (state changes,
attempts settled) to ``ivrbot.campaigns`` through :func:`campaign_event`; the server's own
messages (flows served, reloaded, not served) to ``ivrbot.serve``. Those are the *operator loggers*: shown
at ``--log-level info`` (the default). Everything else in ivrbot is internal detail, shown
from ``-v`` (INFO) or ``--log-level debug``; warnings and errors always show.

Text lines read ``<ISO time> <LEVEL> <logger>: <event> key=value ...``; JSON lines are one
object each with ``time``, ``level``, ``logger``, ``message`` and the event's fields. The
JSON formatter is 20 lines of stdlib rather than python-json-logger: the fields are the
ones :func:`call_event` passes (no guessing which record attributes are "extra"), and
the secret-redacting filter keeps working on the message.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any

from ivrbot.redact import redact_handlers

CALLS = logging.getLogger("ivrbot.calls")
CAMPAIGNS = logging.getLogger("ivrbot.campaigns")
OPERATOR_LOGGERS = ("ivrbot.calls", "ivrbot.campaigns", "ivrbot.serve")
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
NOISY = ("aioice", "aiortc")  # ICE and RTP chatter: only with -vv


def _time(record: logging.LogRecord) -> str:
    when = datetime.datetime.fromtimestamp(record.created).astimezone()
    return when.isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """``2026-01-31T09:15:02.123+00:00 INFO ivrbot.calls: call-in call=... from=...``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        return f"{line}\n{record.exc_text}" if record.exc_text else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["traceback"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (as logging.lastResort).
    ``config``: the arguments of the :func:`configure` call that installed it."""

    config: tuple[str, str, int] = ("info", "text", 0)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class LevelByLogger(logging.Filter):
    """Operator loggers from ``operator`` up, every other logger from ``internal`` up."""

    def __init__(self, operator: int, internal: int) -> None:
        super().__init__()
        self.operator, self.internal = operator, internal

    def filter(self, record: logging.LogRecord) -> bool:
        ours = any(record.name == n or record.name.startswith(f"{n}.") for n in OPERATOR_LOGGERS)
        return record.levelno >= (self.operator if ours else self.internal)


def configured() -> tuple[str, str, int]:
    """How this process logs: the last :func:`configure` call's level, format and verbosity
    (media workers log the same way), kept by its handler on the root logger, which is the
    process's; ``("info", "text", 0)`` before any."""
    mine = [h for h in logging.getLogger().handlers if isinstance(h, StderrHandler)]
    return mine[-1].config if mine else StderrHandler.config


def configure(level: str = "info", fmt: str = "text", verbose: int = 0) -> None:
    """Log to stderr: operator loggers at ``level``; the rest at WARNING (INFO with -v,
    DEBUG with -vv or level debug), never below ``level``. Called again, it replaces its
    own handler; other handlers keep what they get (the root level is only ever lowered)."""
    chosen = logging.getLevelName(level.upper())
    internal = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    internal = logging.DEBUG if chosen == logging.DEBUG else max(internal, chosen)
    handler = StderrHandler()
    handler.config = (level, fmt, verbose)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LevelByLogger(chosen, internal))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level > min(chosen, internal):
        root.setLevel(min(chosen, internal))
    redact_handlers()  # no token or secret in a log line
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def _value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n'):
        return text
    return json.dumps(text, ensure_ascii=False)


def _event(logger: logging.Logger, event: str, level: int, fields: dict[str, Any]) -> None:
    if not logger.isEnabledFor(level):
        return
    kept = {k: v for k, v in fields.items() if v is not None}
    text = " ".join([event, *(f"{k}={_value(v)}" for k, v in kept.items())])
    logger.log(level, "%s", text, extra={"fields": {"event": event, **kept}})


def call_event(event: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """One operator line: ``event key=value ...`` (JSON: ``event`` and the fields as keys).
    Fields that are None are left out."""
    _event(CALLS, event, level, fields)


def campaign_event(event: str, level: int = logging.INFO, /, **fields: Any) -> None:
    """One operator line of a campaign (state changes, attempts settled), as call_event."""
    _event(CAMPAIGNS, event, level, fields)


KEYED = ("rfc4733", "inband")  # the methods of keypad answers


def shown_input(value: str, method: str, secret: bool | None = None) -> str:
    """What is shown of an answer anywhere (log lines, call records, the dashboard, its API
    and feed): the one masking function. ``secret`` is the Ask's: None (the default) shows a
    spoken choice or one key as it is and an entry of several keys only by its length
    (``<6 digits>``: PINs and account numbers stay out of sight); True hides every answer
    (``<1 digit>``, ``<3 words>``); False shows it as it is."""
    if not value or secret is False:
        return value
    if method in KEYED:
        if secret or len(value) > 1:
            return f"<{len(value)} digit{'s' if len(value) > 1 else ''}>"
        return value
    if not secret:
        return value
    words = len(value.split())
    return f"<{words} word{'s' if words != 1 else ''}>"
