"""The test side of "no secret in any log line": collect every secret the gateway issues
(wrapping where tokens, consent codes and settings are made) and every log line written."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from ivrbot.config import Settings
from ivrbot.wire.auth import Issued, TokenService

MIN_SECRET_LEN = 8  # shorter "secrets" (a test's "x") would match anything


class _Collect(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a broken record is the logging call's problem, not a leak
            self.lines.append(f"{record.name} {record.levelname} {record.msg!r} {record.args!r}")


class SecretWatch:
    """A context: while open, every issued secret is remembered and every log record at
    INFO or above (root logger) is kept; :meth:`leaks` names the lines quoting a secret."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()
        self.lines: list[str] = []
        self._handler = _Collect(self.lines)
        self._undo: list[tuple[Any, str, Any]] = []
        self._level = logging.INFO

    def add(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= MIN_SECRET_LEN:
                self.secrets.add(value)

    def _wrap(self, owner: Any, name: str, make: Any) -> None:
        original = getattr(owner, name)
        self._undo.append((owner, name, original))
        setattr(owner, name, make(original))

    def __enter__(self) -> SecretWatch:
        watch = self

        def issued_init(original: Any) -> Any:
            def init(self: Issued, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                watch.add(self.access_token, self.refresh_token)

            return init

        def new_auth_code(original: Any) -> Any:
            async def wrapped(self: TokenService, *args: Any, **kwargs: Any) -> str:
                code: str = await original(self, *args, **kwargs)
                watch.add(code)
                return code

            return wrapped

        def settings_init(original: Any) -> Any:
            def init(self: Settings, *args: Any, **kwargs: Any) -> None:
                original(self, *args, **kwargs)
                watch.add(self.client_secret, *self.api_keys)

            return init

        self._wrap(Issued, "__init__", issued_init)
        self._wrap(TokenService, "new_auth_code", new_auth_code)
        self._wrap(Settings, "__init__", settings_init)
        root = logging.getLogger()
        self._level = root.level
        root.setLevel(min(root.level or logging.WARNING, logging.INFO))
        root.addHandler(self._handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        root = logging.getLogger()
        root.removeHandler(self._handler)
        root.setLevel(self._level)
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()

    def leaks(self) -> list[str]:
        """The log lines that quote a secret (the secret itself masked in the report)."""
        text = "\n".join(self.lines)
        found = [secret for secret in self.secrets if secret in text]
        return [
            line.replace(secret, secret[:4] + "...")
            for secret in found
            for line in self.lines
            if secret in line
        ]
