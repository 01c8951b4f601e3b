"""What the gateway keeps of a call that runs on a media worker (see ivrbot.endpoints.workers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ivrbot.core.actions import CallAction
    from ivrbot.core.sessions import Session


class Relay(Protocol):
    """The worker a relayed call runs on: call operations go there."""

    async def act(self, leg: RelayedLeg, action: CallAction) -> str | None: ...

    async def end(self, leg: RelayedLeg, reason: str) -> None: ...


@dataclass(eq=False)
class RelayedLeg:
    """A session's call whose media and bot run on a worker (same id there)."""

    id: str
    session: Session
    worker: Relay

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/calls/{self.id}"
