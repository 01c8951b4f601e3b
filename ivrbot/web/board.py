"""What the dashboard shows: the bots and their numbers, live calls, call records, flows.

A :class:`Board` lives in the gateway's app (``app[BOARD]``). ``ivrbot run`` tells it where
its bots are (:meth:`Board.serve`); each bot's notes (a step begins, an input arrives, a call
ends) and each change the gateway's switch makes to a call bump :attr:`Board.version`, which
the live feed (:mod:`ivrbot.web.live`) waits on: no polling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ivrbot.flow.graph import graph_data
from ivrbot.logs import shown_input
from ivrbot.numbers import e164, shown

if TYPE_CHECKING:
    from ivrbot.core.switch import SwitchCall
    from ivrbot.flow.flow import Flow
    from ivrbot.flow.runner import Bot
    from ivrbot.wire.gateway import Gateway

RECORDS = 30  # records in a snapshot (searching reaches further back)
SEARCH_DEPTH = 1000  # records a search looks through


class Board:
    """The dashboard's view of one gateway (and of the bots ``ivrbot run`` serves on it)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.bots: Callable[[], Iterable[Bot]] = lambda: ()
        self.broken: Callable[[], dict[Path, str]] = dict
        self.sip: Callable[[], dict[str, Any] | None] = lambda: None  # a SIP connector's status
        # live calls running elsewhere: on media workers (ivrbot.endpoints.workers), as their boards show
        self.elsewhere: Callable[[], list[dict[str, Any]]] = list
        self.version = 0
        self._waiters: set[asyncio.Future[None]] = set()
        self.feeds: set[web.WebSocketResponse] = set()  # the live feeds open (ivrbot.web.live)
        switch = gateway.switch
        recorded = switch.on_call_changed  # the gateway's call records, then the board

        def call_changed(call: SwitchCall) -> None:
            recorded(call)
            self.poke()

        switch.on_call_changed = call_changed

    def serve(
        self, bots: Callable[[], Iterable[Bot]], broken: Callable[[], dict[Path, str]]
    ) -> None:
        """Show these bots (``ivrbot run``'s) and the flow files that did not load."""
        self.bots, self.broken = bots, broken
        self.poke()

    def show_sip(self, status: Callable[[], dict[str, Any]]) -> None:
        """Show a SIP connector's status (registrations, transports, trunks, calls)."""
        self.sip = status
        self.poke()

    def watch(self, bot: Bot) -> None:
        """Follow ``bot``'s calls: every note it makes is a change."""
        bot.observers.append(lambda event, detail: self.poke())
        self.poke()

    def poke(self) -> None:
        """Something changed: wake whoever waits (called on the event loop)."""
        self.version += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def changed_since(self, version: int) -> int:
        """Wait until the board changes after ``version``; the new version."""
        while version == self.version:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.add(waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)
        return self.version

    # what is shown ---------------------------------------------------------------------------
    def flow(self, name: str) -> Flow | None:
        return next((b.flow for b in self.bots() if b.flow.name == name), None)

    def bot_rows(self) -> list[dict[str, Any]]:
        rows = []
        for bot in self.bots():
            flow = bot.flow
            rows.append(
                {
                    "flow": flow.name,
                    "numbers": [e164(n) for n in flow.numbers],  # the page shows them
                    "description": flow.description,
                    "state": "busy" if bot.active else "ready",
                    "calls": len(bot.active),
                    "max_calls": bot.max_calls,
                    "source": flow.source,
                }
            )
        for path, problem in self.broken().items():
            rows.append({"flow": path.stem, "numbers": [], "state": "not served",
                         "problem": problem, "calls": 0, "source": str(path)})  # fmt: skip
        return rows

    def live_calls(self) -> list[dict[str, Any]]:
        """Calls a flow is running (who, which flow, which step, since when, last input),
        then the gateway's other calls (between people)."""
        rows: list[dict[str, Any]] = []
        bot_calls: set[str] = set()
        now = time.time()
        switch_call = {leg.id: c.id for c in self.gateway.switch.calls.values() for leg in c.legs()}
        for bot in self.bots():
            for flow_call, _ in list(bot.active.values()):
                record = flow_call.record
                bot_calls.add(flow_call.call.id or "")
                rows.append(
                    {
                        "id": record.id,
                        "call": switch_call.get(flow_call.call.id or ""),  # to listen in
                        "flow": record.flow,
                        "caller": e164(record.caller),
                        **parties(record.to_dict()),
                        "step": record.path[-1] if record.path else "",
                        "path": list(record.path),
                        "inputs": list(record.inputs),
                        "started_at": record.started_at,
                        "seconds": round(now - record.started_at, 1),
                        "last_input": record.inputs[-1] if record.inputs else None,
                    }
                )
        for call in self.gateway.switch.calls.values():
            if bot_calls & {leg.id for leg in call.legs()}:
                continue  # a flow's call: shown above
            rows.append(
                {
                    "id": call.id,
                    "call": call.id,
                    "flow": "",
                    "caller": e164(call.from_uri),
                    "callee": e164(call.to_uri),
                    "direction": "",
                    "from": e164(call.from_uri),
                    "to": e164(call.to_uri),
                    "step": "",
                    "state": str(call.state),
                    "started_at": call.started_at,
                    "seconds": round(now - call.started_at, 1),
                    "last_input": None,
                    "path": [],
                    "inputs": [],
                }
            )
        return rows + self.elsewhere()

    async def records(
        self, query: str = "", limit: int = RECORDS, calls: list[dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        """The latest flow call records, newest first; ``query``: those that mention it
        (caller, flow, step, prompt, input, transcript, outcome), case-insensitive. A record
        in progress is stored when the call starts: its path and inputs so far are the live
        call's (``calls``: :meth:`live_calls`, when the caller has them)."""
        store = self.gateway.store
        numbers = {b.flow.name: b.flow.user_ids[0] for b in self.bots()}  # older records'
        if not query:
            found = [record_row(r, numbers) for r in await store.flow_calls(limit=limit)]
        else:
            wanted = query.casefold()
            found = []
            for record in await store.flow_calls(limit=SEARCH_DEPTH):
                if wanted in _searchable(record):
                    found.append(record_row(record, numbers))
                    if len(found) >= limit:
                        break
        live = {c["id"]: c for c in (self.live_calls() if calls is None else calls)}
        for row in found:
            call = live.get(row["id"])
            if call is not None and row["outcome"] == "in-progress":
                row["path"] = call["path"]
                row["inputs"] = call["inputs"]
        return found

    async def snapshot(self) -> dict[str, Any]:
        calls = self.live_calls()
        records = await self.records(calls=calls)
        return {"version": self.version, "now": time.time(), "bots": self.bot_rows(),
                "calls": calls, "records": records, "sip": self.sip()}  # fmt: skip


def parties(record: Mapping[str, Any], numbers: Mapping[str, str] | None = None) -> dict[str, str]:
    """Who called whom, as data (E.164; the page shows them as people write them): ``from``
    and ``to`` by the record's direction (an outbound call is from the bot's number to the
    callee), and the ``direction``. A record kept before records had the bot's number takes
    it from ``numbers`` (flow -> number)."""
    other = e164(str(record.get("caller", "")))
    number = str(record.get("number") or (numbers or {}).get(str(record.get("flow")), ""))
    bot = e164(number) if number else ""
    direction = str(record.get("direction") or "inbound")
    if direction == "outbound":
        return {"direction": direction, "from": bot, "to": other}
    return {"direction": direction, "from": other, "to": bot}


def _shown_input(entry: dict[str, Any], files: list[str]) -> dict[str, Any]:
    if entry.get("value") in files:  # a Record step's: the file's name (not where it is kept)
        return {**entry, "value": Path(entry["value"]).name}
    if "masked" not in entry:  # kept before answers were masked at the source: as logs show it
        method = str(entry.get("method", ""))
        value = shown_input(str(entry.get("value", "")), method)
        text = shown_input(str(entry.get("text", "")), method)
        return {**entry, "value": value, "text": text, "masked": value != entry.get("value")}
    return entry


def record_row(record: dict[str, Any], numbers: Mapping[str, str]) -> dict[str, Any]:
    row = dict(record)  # its outcome is in today's names (the store reads them so)
    row["caller"] = e164(str(record.get("caller", "")))
    row.update(parties(record, numbers))
    files = [str(p) for p in record.get("recordings") or []]
    row["recordings"] = [{"n": n, "name": Path(p).name} for n, p in enumerate(files)]
    row["inputs"] = [_shown_input(i, files) for i in record.get("inputs") or []]
    return row


def _searchable(record: dict[str, Any]) -> str:
    parts = [str(record.get(k, "")) for k in ("id", "flow", "caller", "outcome", "error")]
    parts += [e164(str(record.get("caller", ""))), shown(str(record.get("caller", "")))]
    parts += [e164(str(record.get("number", ""))), shown(str(record.get("number", "")))]
    parts += list(record.get("path") or []) + list(record.get("prompts") or [])
    files = [str(p) for p in record.get("recordings") or []]  # inputs as shown: no secret found
    parts += [str(_shown_input(i, files).get("value", "")) for i in record.get("inputs") or []]
    return " ".join(parts).casefold()


def flow_graph(flow: Flow) -> dict[str, Any]:
    """The flow's steps (kind, colour, prompt, options) and where each can go, for the
    dashboard to lay out (dagre): :func:`ivrbot.flow.graph.graph_data`."""
    return graph_data(flow)


BOARD = web.AppKey("board", Board)
