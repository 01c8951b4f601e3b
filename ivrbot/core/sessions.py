"""Sessions: one logged-in endpoint of one identity, with its event channel and calls."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.core.channel import EventChannel

if TYPE_CHECKING:
    from ivrbot.core.handle import CallHandle

log = logging.getLogger(__name__)


@dataclass
class Session:
    id: str
    user_id: str
    token_digest: str
    expires_at: float
    e911_id: str | None = None
    channel: EventChannel = field(default_factory=EventChannel)
    # its calls, by id: of this process's switch, or relayed to a media worker
    calls: dict[str, CallHandle] = field(default_factory=dict)
    # A session holds one pending (ringing) call at a time (docs/spec/phone-api.md): a call that
    # would ring it meanwhile waits here, and rings it once the pending one is settled.
    offering: int = 0  # invitations being prepared for this session
    waiting: list[tuple[Any, str]] = field(default_factory=list)  # (Call, from URI)
    local: bool = False  # made in this process (a bot, a SIP call): media as frames in process
    # what it hears while the far end holds ('music' | 'silence'; None: the switch's
    # hold_audio); a session that said is told of the far end's hold (session-modified)
    hold_audio: str | None = None

    @property
    def path(self) -> str:
        return f"/RTC/v1/sessions/{self.id}"


class SessionRegistry:
    def __init__(self, ttl_s: int, clock: Clock = REAL_CLOCK) -> None:
        self.ttl_s = ttl_s
        self.clock = clock  # a session expires ttl_s after it opened (or last kept alive)
        self._sessions: dict[str, Session] = {}

    def create(
        self,
        user_id: str,
        token_digest: str,
        e911_id: str | None,
        local: bool = False,
        channel: EventChannel | None = None,
        sid: str = "",
    ) -> Session:
        """A new session; ``channel`` and ``sid`` are given for a media worker's copy of a
        session of the main process (ivrbot/workers: same id, events sent back there)."""
        sid = sid or secrets.token_hex(8)
        expires = self.clock.time() + self.ttl_s if channel is None else float("inf")
        session = Session(sid, user_id, token_digest, expires, e911_id)
        session.local = local
        if channel is not None:
            session.channel = channel
        self._sessions[sid] = session
        log.info("session %s opened for %s", sid, user_id)
        return session

    def get(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    def remove(self, sid: str) -> Session | None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            session.channel.close()
            log.info("session %s closed for %s", sid, session.user_id)
        return session

    def of_user(self, user_id: str) -> list[Session]:
        return [s for s in self._sessions.values() if s.user_id == user_id]

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        return len(self._sessions)
