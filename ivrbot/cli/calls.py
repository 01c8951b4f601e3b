"""``ivrbot calls ...``: the records of calls (every call the gateway carried, and the path,
prompts, inputs and outcome of the calls that ran through flows)."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ivrbot.config import Settings
from ivrbot.numbers import shown
from ivrbot.store.base import CallLogEntry
from ivrbot.store.nodes import node_alive
from ivrbot.store.sqlite import CALL_FIELDS, SqliteStore


def _when(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _read(db: str | None, what: str, arg: Any) -> Any:
    """Read from the store (never creating one: a wrong path is an error)."""
    db = db or Settings().db
    if db != ":memory:" and not Path(db).is_file():
        raise click.ClickException(f"no store at {db} (give --db FILE, or set IVRBOT_DB)")
    return asyncio.run(_query(db, what, arg))


async def _query(db: str, what: str, arg: Any) -> Any:
    store = SqliteStore(db)
    try:
        if what == "list":
            return await store.call_log(**arg)
        return await store.flow_call(arg)
    finally:
        await store.close()


def entry_dict(entry: CallLogEntry) -> dict[str, Any]:
    """One call of the log as JSON: the flow record's fields when a flow ran the call,
    ``gateway`` the gateway's record (None for a call the gateway of this store did not
    carry), ``outcome`` what happened in one word."""
    call = entry.call
    flow = entry.flow or {
        "id": call.id if call else "", "flow": None, "caller": call.from_uri if call else "",
        "started_at": entry.started_at, "ended_at": call.ended_at if call else None,
        "path": [], "prompts": [], "inputs": [],
    }  # fmt: skip
    gateway = None
    if call is not None:
        gateway = {f: getattr(call, f) for f in CALL_FIELDS if f != "node"}
    return {**flow, "outcome": _outcome(entry), "gateway": gateway}


def _outcome(entry: CallLogEntry) -> str:
    """The entry's outcome; a call still 'in progress' in a process that is gone was cut by
    a crash (the next start of the server will mark it so)."""
    outcome = entry.outcome
    if outcome == "in-progress":
        node = (entry.flow or {}).get("node") or (entry.call.node if entry.call else "")
        if not node_alive(node):
            return "interrupted"
    return outcome


@click.group()
def calls() -> None:
    """Records of calls, from the store (IVRBOT_DB, default ivrbot.db)."""


@calls.command("list")
@click.option("--flow", default=None, help="Only calls through this flow.")
@click.option(
    "--outcome",
    default=None,
    help='Only calls with this outcome (README "Outcomes": completed, caller-hangup, machine, '
    "busy, rejected, no-answer, canceled, abandoned, not-found, failed, error, transferred, "
    "interrupted, in-progress, ...).",
)
@click.option("--limit", default=20, show_default=True)
@click.option("--db", default=None, help="The store file (default: IVRBOT_DB or ivrbot.db).")
@click.option("--json", "as_json", is_flag=True)
def list_calls(
    flow: str | None, outcome: str | None, limit: int, db: str | None, as_json: bool
) -> None:
    """Every call, newest first (turned away busy, rejected and abandoned ones too): when,
    who called whom, the flow, the outcome, the steps and the inputs."""
    query = {"limit": limit, "flow": flow, "outcome": outcome}
    entries = [entry_dict(e) for e in _read(db, "list", query)]
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False))
        return
    table = Table()
    for column in ("id", "started", "from", "to", "flow", "outcome", "s", "steps", "inputs"):
        table.add_column(column)
    for r in entries:
        inputs = " ".join(i["value"] or i["outcome"] for i in r["inputs"])
        gateway = r["gateway"] or {}
        seconds = f"{gateway['duration']:.0f}" if gateway.get("duration") else "-"
        table.add_row(
            r["id"], _when(r["started_at"]), shown(r["caller"]), shown(gateway.get("to_uri", "-")),
            r["flow"] or "-", r["outcome"], seconds, str(len(r["path"])), inputs,
        )  # fmt: skip
    Console().print(table)


@calls.command()
@click.argument("record_id")
@click.option("--db", default=None, help="The store file (default: IVRBOT_DB or ivrbot.db).")
@click.option("--json", "as_json", is_flag=True)
def show(record_id: str, db: str | None, as_json: bool) -> None:
    """One call: its path through the flow, every prompt and every input."""
    record = _read(db, "show", record_id)
    if record is None:
        raise click.ClickException(f"no call record {record_id!r} (ivrbot calls list shows ids)")
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{record['flow']}[/] call {record['id']} from {shown(record['caller'])}")
    console.print(
        f"{_when(record['started_at'])} -> {_when(record['ended_at'])}: {record['outcome']}"
    )
    console.print("path: " + " -> ".join(record["path"]))
    for text in record["prompts"]:
        console.print(f"  bot said: {text}")
    for i in record["inputs"]:
        console.print(f"  input at {i['step']}: {i['outcome']} {i['value']} {i.get('text', '')}")
    for t in record.get("transfers", []):
        why = f" ({t['reason']})" if t.get("reason") else ""
        console.print(
            f"  {t['mode']} transfer at {t['step']} to {t['target']}: {t['outcome']}{why}"
        )
    for c in record.get("conferences", []):
        why = f" ({c['reason']})" if c.get("reason") else ""
        others = ", ".join(c.get("others", [])) or "nobody"
        console.print(f"  conference at {c['step']}: room {c['room']} ({c['mode']}), "
                      f"{c['outcome']}{why}; already there: {others}")  # fmt: skip
    for path in record.get("recordings", []):
        console.print(f"  recording: {path}")
    if record.get("error"):
        console.print(f"[red]error:[/] {record['error']}")
