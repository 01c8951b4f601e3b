"""Proving a mobile number before the consent page binds it: a one-time code, sent by a
verifier the operator configures (``IVRBOT_MOBILE_VERIFIER``).

- ``dev`` (the default in development mode, refused outside it): nothing is sent; the code
  is shown on the consent page, marked as development only, and kept in ``DevVerifier.sent``.
- a command (e.g. ``/usr/local/bin/send-sms``): run with ``IVRBOT_VERIFY_NUMBER`` and
  ``IVRBOT_VERIFY_CODE`` in its environment (never on its command line); exit status 0
  means sent. It is how an operator plugs in an SMS provider.
- empty outside development mode: mobile numbers cannot be bound on this gateway.
- in Python: ``gateway.verifications.verifier = obj``, any object with ``async send(number,
  code)`` that raises VerifyError when it could not send.

A code has 6 digits, lives ``IVRBOT_AUTH_CODE_TTL`` seconds, allows ``MAX_ATTEMPTS`` wrong
guesses and is used once; a number has at most ``MAX_PENDING_PER_NUMBER`` codes out at a time.
Codes never reach a log line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import shlex
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.config import Settings, child_environment

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
MAX_PENDING_PER_NUMBER = 3
MAX_PENDING = 10_000
SEND_TIMEOUT_S = 15.0


class VerifyError(Exception):
    """The code could not be sent, or the answer is wrong; the message says which."""


class Verifier(Protocol):
    name: str

    async def send(self, number: str, code: str) -> None:
        """Deliver ``code`` to ``number``; VerifyError if it could not."""


class DevVerifier:
    """Development only: the code is shown on the page (and kept here for tests)."""

    name = "dev"
    shows_code = True

    def __init__(self) -> None:
        self.sent: deque[tuple[str, str]] = deque(maxlen=100)

    async def send(self, number: str, code: str) -> None:
        self.sent.append((number, code))
        log.warning("development verifier: the code for %s is shown on the consent page", number)


class CommandVerifier:
    """Runs the operator's command with the number and code in its environment."""

    shows_code = False

    def __init__(self, command: str) -> None:
        self.argv = shlex.split(command)
        self.name = self.argv[0] if self.argv else ""

    async def send(self, number: str, code: str) -> None:
        env = child_environment(IVRBOT_VERIFY_NUMBER=number, IVRBOT_VERIFY_CODE=code)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as exc:
            log.error("mobile verifier %s could not run: %s", self.name, exc.strerror or exc)
            raise VerifyError("the code could not be sent (the verifier did not run)") from None
        try:
            status = await asyncio.wait_for(proc.wait(), SEND_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("mobile verifier %s timed out", self.name)
            raise VerifyError("the code could not be sent (the verifier timed out)") from None
        if status != 0:
            log.error("mobile verifier %s exited with status %s", self.name, status)
            raise VerifyError("the code could not be sent (the verifier failed)")


def make_verifier(settings: Settings) -> DevVerifier | CommandVerifier | None:
    chosen = settings.verifier
    if not chosen:
        return None
    return DevVerifier() if chosen == "dev" else CommandVerifier(chosen)


@dataclass
class Pending:
    """A code sent to ``number`` for one consent request (client, redirect, scope)."""

    number: str
    request: tuple[str, str, str]
    code_digest: str
    expires_at: float
    attempts: int = 0


def _code_digest(code: str, salt: str) -> str:
    return hmac.new(salt.encode(), code.encode(), "sha256").hexdigest()


class Verifications:
    """The codes out for verification, in memory (a restart voids them: ask again)."""

    def __init__(self, settings: Settings, clock: Clock = REAL_CLOCK) -> None:
        self.settings = settings
        self.clock = clock  # codes expire on it
        self.verifier = make_verifier(settings)
        self._pending: dict[str, Pending] = {}
        self._salt = secrets.token_hex(16)

    def _prune(self, now: float) -> None:
        for vid in [v for v, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[vid]
        while len(self._pending) >= MAX_PENDING:
            del self._pending[next(iter(self._pending))]  # the oldest

    async def start(self, number: str, request: tuple[str, str, str]) -> tuple[str, str]:
        """Send a new code to ``number``: (verification id, code). VerifyError if no
        verifier is configured, too many codes are out for the number, or sending failed."""
        if self.verifier is None:
            raise VerifyError(
                "this gateway cannot verify mobile numbers: its operator has not set "
                "IVRBOT_MOBILE_VERIFIER"
            )
        now = self.clock.time()
        self._prune(now)
        if sum(p.number == number for p in self._pending.values()) >= MAX_PENDING_PER_NUMBER:
            raise VerifyError("too many codes were sent to this number: wait and try again")
        vid, code = secrets.token_urlsafe(18), f"{secrets.randbelow(10**6):06d}"
        expires = now + self.settings.auth_code_ttl_s
        self._pending[vid] = Pending(number, request, _code_digest(code, self._salt), expires)
        try:
            await self.verifier.send(number, code)
        except VerifyError:
            self._pending.pop(vid, None)
            raise
        return vid, code

    def is_pending(self, vid: str) -> bool:
        pending = self._pending.get(vid)
        return pending is not None and pending.expires_at > self.clock.time()

    def confirm(self, vid: str, code: str, request: tuple[str, str, str]) -> str:
        """The verified number if ``code`` is right for ``vid`` (used once); VerifyError
        naming what is wrong otherwise."""
        self._prune(self.clock.time())
        pending = self._pending.get(vid)
        if pending is None or pending.request != request:
            raise VerifyError("this code has expired or was used: ask for a new one")
        given = _code_digest(code.strip(), self._salt)
        if not hmac.compare_digest(given, pending.code_digest):
            pending.attempts += 1
            if pending.attempts >= MAX_ATTEMPTS:
                del self._pending[vid]
                raise VerifyError("too many wrong codes: ask for a new one")
            raise VerifyError("wrong code: check the message and try again")
        del self._pending[vid]
        return pending.number
