"""One call handle for every kind of call a session has: a call of this process's switch
(``CallLeg``: a client's, a bot's, a SIP caller's) or one relayed to a media worker
(``RelayedLeg``). A session keeps its calls as handles (``Session.calls``); the wire API, the
media workers, the SIP connector and the bots act on a call through its handle and never ask
which kind it is."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ivrbot.core.actions import CallAction
    from ivrbot.core.endpoints import Endpoint
    from ivrbot.core.sessions import Session
    from ivrbot.core.switch_call import HandOff


class CallHandle(Protocol):
    """A session's call, wherever it runs."""

    @property
    def id(self) -> str:
        """The call's id in its session (the last part of its resource URL)."""

    @property
    def session(self) -> Session: ...

    @property
    def resource_url(self) -> str: ...

    @property
    def endpoint(self) -> Endpoint | None:
        """This party's endpoint when the call runs in this process (an in-process client
        or a SIP call plugs its media into it); None for a call on a media worker."""

    @property
    def call_id(self) -> str:
        """The id the gateway's call records and log lines give the whole call."""

    async def act(self, action: CallAction) -> str | None:
        """Do ``action`` (answer, hold, resume, move, transfer, a media change, merge);
        the modId for hold, resume and a media change. CallStateError when the call's
        state does not allow it now."""

    async def end(self, reason: str) -> None:
        """This session hangs up, cancels or rejects (``reason`` for the far end)."""

    def hand_off(self, target: str) -> Awaitable[HandOff] | None:
        """A blind transfer of the far party to ``target`` done by the far end itself (a
        REFER to a SIP caller's PBX), if it takes it; None: the gateway bridges it."""
