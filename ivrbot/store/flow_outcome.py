"""What became of the flow that answered a call, read from the store: ``ivrbot call`` uses it
to report a flow that failed (the caller only hears an apology and a hang-up) and to name the
prompts the caller heard."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ivrbot.store.sqlite import SqliteStore, StoreError

log = logging.getLogger(__name__)
POLL_S = 0.1
RECENT = 50  # the latest calls looked at


def failure_of(record: dict[str, Any] | None) -> str | None:
    """What failed, from a flow's record (None: it did not fail, or there is no record)."""
    if record is None or record.get("outcome") != "error":
        return None
    return str(record.get("error") or "the flow failed")


async def flow_record(db: str, caller_leg: str, wait_s: float = 3.0) -> dict[str, Any] | None:
    """The record of the flow that ran the call whose caller's leg is ``caller_leg``, once it
    is complete (or as it is after ``wait_s``); None when the store at ``db`` has no record
    of the call (a gateway on another machine or with another store) or of a flow running
    it."""
    if not caller_leg or db == ":memory:" or not await asyncio.to_thread(Path(db).is_file):
        return None
    try:
        store = SqliteStore(db)
    except StoreError as exc:
        log.debug("no store to read the flow's record from: %s", exc)
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    try:
        while True:
            entries = await store.call_log(limit=RECENT)
            entry = next((e for e in entries if e.call and e.call.caller_leg == caller_leg), None)
            if entry is None or entry.flow is None:  # not this gateway's call, or no flow's
                return None
            if entry.flow.get("outcome") not in ("", "in-progress") or loop.time() >= deadline:
                return entry.flow
            await asyncio.sleep(POLL_S)
    except StoreError as exc:
        log.debug("could not read the flow's record: %s", exc)
        return None
    finally:
        await store.close()
