"""``ivrbot calls ...``: the records of calls through flows (path, prompts, inputs, outcome)."""

from __future__ import annotations

import asyncio
import datetime
import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ivrbot.config import Settings
from ivrbot.store.sqlite import SqliteStore


def _when(ts: float | None) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


async def _read(db: str, what: str, arg: Any) -> Any:
    store = SqliteStore(db)
    try:
        if what == "list":
            return await store.flow_calls(**arg)
        return await store.flow_call(arg)
    finally:
        await store.close()


@click.group()
def calls() -> None:
    """Records of calls through flows, from the store (IVRBOT_DB, default ivrbot.db)."""


@calls.command("list")
@click.option("--flow", default=None, help="Only calls through this flow.")
@click.option("--limit", default=20, show_default=True)
@click.option("--db", default=None, help="The store file (default: IVRBOT_DB or ivrbot.db).")
@click.option("--json", "as_json", is_flag=True)
def list_calls(flow: str | None, limit: int, db: str | None, as_json: bool) -> None:
    """The newest calls: when, flow, caller, outcome, digits and words."""
    records = asyncio.run(_read(db or Settings().db, "list", {"limit": limit, "flow": flow}))
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False))
        return
    table = Table()
    for column in ("id", "started", "flow", "caller", "outcome", "steps", "inputs"):
        table.add_column(column)
    for r in records:
        inputs = " ".join(i["value"] or i["outcome"] for i in r["inputs"])
        table.add_row(
            r["id"], _when(r["started_at"]), r["flow"], r["caller"], r["outcome"],
            str(len(r["path"])), inputs,
        )  # fmt: skip
    Console().print(table)


@calls.command()
@click.argument("record_id")
@click.option("--db", default=None, help="The store file (default: IVRBOT_DB or ivrbot.db).")
@click.option("--json", "as_json", is_flag=True)
def show(record_id: str, db: str | None, as_json: bool) -> None:
    """One call: its path through the flow, every prompt and every input."""
    record = asyncio.run(_read(db or Settings().db, "show", record_id))
    if record is None:
        raise click.ClickException(f"no call record {record_id!r} (ivrbot calls list shows ids)")
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    console = Console()
    console.print(f"[bold]{record['flow']}[/] call {record['id']} from {record['caller']}")
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
