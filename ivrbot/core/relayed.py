"""What the gateway keeps of a call that runs on a media worker (see ivrbot.endpoints.workers):
its call handle, whose actions go to the worker."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ivrbot.core.actions import CallAction
    from ivrbot.core.sessions import Session
    from ivrbot.core.switch_call import HandOff


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
    call_id: str = ""  # the worker's call id (its records and log lines)

    def __post_init__(self) -> None:
        self.call_id = self.call_id or self.id

    @property
    def resource_url(self) -> str:
        return f"{self.session.path}/calls/{self.id}"

    @property
    def endpoint(self) -> None:
        return None  # its media are on the worker

    async def act(self, action: CallAction) -> str | None:
        return await self.worker.act(self, action)

    async def end(self, reason: str) -> None:
        await self.worker.end(self, reason)

    def hand_off(self, target: str) -> Awaitable[HandOff] | None:
        return None  # the worker's own bot hands its calls off there
