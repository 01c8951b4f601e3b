"""Durable call records: open while a call runs, settled 'interrupted' after a crash, one
log of every call (gateway records joined with flow records), older databases upgraded."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ivrbot.store import CallRecord, SqliteStore
from ivrbot.store.nodes import node_alive, this_node

pytestmark = pytest.mark.unit

DEAD = "elsewhere-host-that-is-gone:1:x"  # never alive: see alive() below


def alive(node: str) -> bool:
    return node == this_node()


def call(n: int, **kw: object) -> CallRecord:
    values: dict[str, object] = dict(
        id=f"c{n}", from_uri="sip:caller@ivrbot.local", to_uri="tel:+15550001000",
        started_at=1000.0 + n, answered_at=None, ended_at=None, reason="", duration=0.0,
        caller_leg=f"a{n}", callee_leg=f"b{n}", node=this_node(),
    )  # fmt: skip
    values.update(kw)
    return CallRecord(**values)  # type: ignore[arg-type]


def flow_record(n: int, call_id: str, outcome: str = "in-progress", **kw: object) -> dict:
    return {
        "id": f"f{n}", "flow": "welcome", "caller": "sip:caller@ivrbot.local",
        "started_at": 1000.0 + n, "ended_at": None, "path": ["menu"], "prompts": [],
        "inputs": [], "outcome": outcome, "error": "", "call_id": call_id,
        "node": this_node(), **kw,
    }  # fmt: skip


async def test_a_crash_leaves_open_records_that_a_restart_marks_interrupted(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "calls.db")
    await store.add_call(call(1, node=DEAD, answered_at=1001.5))  # cut by a crash
    await store.add_call(call(2))  # still running in this process
    await store.add_flow_call(flow_record(1, "b1", node=DEAD))
    await store.add_flow_call(flow_record(2, "b2"))
    assert store.settle_interrupted(2000.0, alive) == 2
    log = {e.call.id if e.call else "": e for e in await store.call_log()}
    assert log["c1"].outcome == "interrupted" and log["c1"].call is not None
    assert log["c1"].call.ended_at == 2000.0 and log["c1"].call.reason == "interrupted"
    assert log["c1"].flow is not None and log["c1"].flow["outcome"] == "interrupted"
    assert "stopped" in log["c1"].flow["error"]
    assert log["c2"].outcome == "in-progress"  # a live process's call is left alone
    assert store.settle_interrupted(3000.0, alive) == 0  # settled once
    await store.close()


async def test_the_log_shows_every_call_with_filters(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "calls.db")
    now = time.time()
    await store.add_call(call(1, ended_at=now, reason="User busy"))  # turned away: no flow
    await store.add_call(call(2, answered_at=1002.1, ended_at=now, reason="Call terminated"))
    await store.add_flow_call(flow_record(2, "b2", outcome="completed"))
    await store.add_flow_call(flow_record(3, "elsewhere", outcome="abandoned", flow="bank"))
    everything = await store.call_log()
    assert [e.outcome for e in everything] == ["abandoned", "completed", "busy"]
    assert everything[1].call is not None and everything[1].flow is not None  # joined
    assert [e.outcome for e in await store.call_log(outcome="busy")] == ["busy"]
    assert [e.outcome for e in await store.call_log(flow="bank")] == ["abandoned"]
    assert len(await store.call_log(limit=2)) == 2
    await store.close()


async def test_an_older_database_gets_the_new_columns(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE call_records (id VARCHAR(64) PRIMARY KEY, from_uri TEXT NOT NULL, "
            "to_uri TEXT NOT NULL, started_at FLOAT NOT NULL, answered_at FLOAT, "
            "ended_at FLOAT, reason TEXT NOT NULL, duration FLOAT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO call_records VALUES ('old', 'sip:a@x', 'sip:b@x', 1, 2, 3, "
            "'Call terminated', 1)"
        )
    store = SqliteStore(db)
    (entry,) = await store.call_log()
    assert entry.call is not None and entry.call.id == "old" and entry.outcome == "completed"
    await store.add_call(call(5))
    assert len(await store.call_log()) == 2
    await store.close()


def test_nodes() -> None:
    assert node_alive(this_node())
    assert not node_alive("")
    assert not node_alive("garbage")
    host = this_node().split(":")[0]
    assert not node_alive(f"{host}:999999:abc")  # no such process
    assert not node_alive(f"{this_node()}x")  # this pid, another run of it (a reused pid)
    assert node_alive("another-host:1:abc")  # cannot tell: left alone


async def test_records_of_earlier_versions_read_back_in_todays_outcome_names(
    tmp_path: Path,
) -> None:
    """Before one vocabulary: a flow that dialled someone busy wrote 'not-answered' with the
    gateway's reason as its error, and the gateway's record of a dead peer said 'lost'."""
    store = SqliteStore(tmp_path / "calls.db")
    now = time.time()
    await store.add_flow_call(flow_record(1, "", outcome="not-answered", error="User busy"))
    await store.add_flow_call(flow_record(2, "", outcome="not-answered", error="No answer"))
    await store.add_flow_call(flow_record(3, "", outcome="completed"))
    await store.add_call(call(4, answered_at=1004.5, ended_at=now, reason="Connection lost"))
    with sqlite3.connect(tmp_path / "calls.db") as db:  # as an earlier version stored it
        db.execute("UPDATE call_records SET outcome = 'lost' WHERE id = 'c4'")
    by_id = {r["id"]: r["outcome"] for r in await store.flow_calls()}
    assert by_id == {"f1": "busy", "f2": "no-answer", "f3": "completed"}
    assert (await store.flow_call("f1") or {})["outcome"] == "busy"
    busy = await store.call_log(outcome="busy")
    assert [(e.flow or {}).get("id") for e in busy] == ["f1"]
    lost = await store.call_log(outcome="connection-lost")
    assert [e.call.id for e in lost if e.call] == ["c4"]
    assert await store.call_log(outcome="not-answered") == []  # no longer a name
    await store.close()
