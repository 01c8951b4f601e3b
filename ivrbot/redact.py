"""Keeping secrets out of log lines: bearer tokens, ``access_token=`` and friends.

:func:`redact` replaces the secret part of anything that looks like a credential: an
``Authorization: Bearer``/``Basic`` value, a query or form parameter (``access_token=``,
``refresh_token=``, ``token=``, ``code=``, ``client_secret=`` ...) and the same names as
JSON or Python-repr keys. :class:`RedactSecrets` is a logging filter that applies it to a
record's message and traceback; the gateway puts it on aiohttp's loggers (its access log and
the errors it logs about malformed requests quote the request line) and ``ivrbot`` on the
handlers it configures.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
SECRET_NAMES = (
    "access_token",
    "refresh_token",
    "id_token",
    "auth_code",
    "code",
    "token",
    "client_secret",
    "secret",
    "password",
)
_NAMES = "|".join(SECRET_NAMES)
_PATTERNS = (
    # Authorization header values (RFC 6750 bearer tokens, HTTP Basic credentials)
    re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]{8,}=*"),
    # query strings and form bodies: ?access_token=..&code=..
    re.compile(rf"(?i)(?<![\w-])({_NAMES})(=)[^&\s'\"#]+"),
    # JSON and Python reprs: "access_token": "..." / 'code': '...'
    re.compile(rf"(?i)([\"']({_NAMES})[\"']\s*:\s*)([\"'])[^\"']*\3"),
)
_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.websocket")


def redact(text: str) -> str:
    """``text`` with every credential-looking value replaced by ``[redacted]``."""
    text = _PATTERNS[0].sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", text)
    return _PATTERNS[2].sub(lambda m: f"{m[1]}{m[3]}{REDACTED}{m[3]}", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and traceback) with :func:`redact`; never drops one."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactSecrets()


def redact_aiohttp_logs() -> None:
    """Put the filter on aiohttp's server loggers (idempotent)."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def redact_handlers(logger: logging.Logger | None = None) -> None:
    """Put the filter on every handler of ``logger`` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
