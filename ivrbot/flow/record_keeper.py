"""A bot's call records: the latest finished calls kept in memory (their records, and the
calls themselves for tests and scenarios to inspect), every record written to the store
(when the call starts, and again when it ends), and waiting until calls have finished."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from ivrbot.flow.call import FlowCall
from ivrbot.flow.record import FlowRecord
from ivrbot.store.base import Store
from ivrbot.tasks import TaskSet

log = logging.getLogger(__name__)


class RecordKeeper:
    """The records of one bot's calls (see the module)."""

    def __init__(
        self, label: str, store: Store | None, keep_records: int = 200, keep_calls: int = 8
    ) -> None:
        self.label = label
        self.store = store  # where call records go (None: kept in memory only)
        self.records: deque[FlowRecord] = deque(maxlen=keep_records)
        self.finished: deque[FlowCall] = deque(maxlen=keep_calls)
        self.ended_count = 0  # every call ever finished (records may have dropped it)
        self._ended = asyncio.Condition()
        self._writes = TaskSet(f"{label} records")

    def started(self, record: FlowRecord) -> None:
        """A call began: on record as in progress (written in the background)."""
        self._writes.spawn(self.write(record))

    async def ended(self, flow_call: FlowCall) -> None:
        """``flow_call`` is over (its record complete)."""
        self.finished.append(flow_call)
        await self.keep(flow_call.record)

    async def keep(self, record: FlowRecord) -> None:
        """A finished call's record: in ``records``, and in the store when there is one."""
        self.records.append(record)
        await self.write(record)
        async with self._ended:
            self.ended_count += 1
            self._ended.notify_all()

    async def write(self, record: FlowRecord) -> None:
        """Write ``record`` to the store (a failure is logged: the call goes on)."""
        if self.store is not None:
            try:
                await self.store.add_flow_call(record.to_dict())
            except Exception as exc:
                log.error("could not store the record of a %s call: %s", self.label, exc)

    async def wait_records(self, count: int = 1, timeout_s: float = 30.0) -> deque[FlowRecord]:
        """Wait until ``count`` calls have finished (TimeoutError after ``timeout_s``); the
        records of the latest finished calls, in the order they finished."""
        async with asyncio.timeout(timeout_s), self._ended:
            await self._ended.wait_for(lambda: self.ended_count >= count)
        return self.records

    async def finished_call(self, flow_call: FlowCall, timeout_s: float = 600) -> FlowRecord:
        """Wait until ``flow_call`` has ended; its record."""
        async with asyncio.timeout(timeout_s), self._ended:
            await self._ended.wait_for(lambda: flow_call.done)
        return flow_call.record
