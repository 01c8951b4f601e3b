"""A bot's sessions: Phones logged in as the flow's number, one per call at a time, kept and
reused. A few idle ones are kept ready (``spares``) so that calls ringing at the same moment
each find one (a session logging in after the call rang would not be rung)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ivrbot.flow.sign_in import SignIn
from ivrbot.phone.phone import Phone

log = logging.getLogger(__name__)


class SessionPool:
    """The Phones of one bot (see the module). ``subscribe`` is called with each new Phone
    before it logs in (so no event of it is missed)."""

    def __init__(
        self,
        sign_in: SignIn,
        label: str,
        user_id: str,
        max_calls: int,
        spares: int,
        subscribe: Callable[[Phone], None],
    ) -> None:
        self.sign_in = sign_in
        self.label = label
        self.user_id = user_id
        self.max_calls = max_calls
        self.spares = spares
        self._subscribe = subscribe
        self.phones: list[Phone] = []
        self.taken: set[Phone] = set()  # handed a call by the switch (the bot's acceptor)
        self._adding: asyncio.Task[Phone] | None = None

    def idle(self, phone: Phone) -> bool:
        return phone.logged_in and not phone.calls and phone not in self.taken

    async def idle_or_new(self) -> Phone:
        """An idle session, or a new one when none is."""
        phone = next((p for p in self.phones if self.idle(p)), None)
        return phone if phone is not None else await self.add()

    async def fill(self) -> None:
        """Log in the spares (at start)."""
        for _ in range(self.spares):
            await self.add()

    async def add(self) -> Phone:
        phone = self.sign_in.phone(
            f"{self.label}:{len(self.phones) + 1}",
            hold_audio="silence",  # music on hold is not the caller: a held bot hears nothing
        )
        self._subscribe(phone)
        try:
            await self.sign_in.login(phone, self.user_id)
        except BaseException:
            await phone.close()  # its connection to the gateway, if any
            raise
        self.phones.append(phone)
        return phone

    def ensure_spare(self) -> None:
        """Keep ``spares`` idle sessions logged in (up to max_calls) for the next calls."""
        idle = [p for p in self.phones if self.idle(p)]
        if len(idle) >= self.spares or len(self.phones) >= self.max_calls:
            return
        if self._adding is None or self._adding.done():
            self._adding = asyncio.ensure_future(self.add())
            self._adding.add_done_callback(self._added)

    def _added(self, task: asyncio.Task[Phone]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("%s: could not log in another session: %s", self.label, task.exception())
            return
        self.ensure_spare()

    async def close(self) -> None:
        if self._adding is not None:
            self._adding.cancel()
        for phone in self.phones:
            await phone.close()
