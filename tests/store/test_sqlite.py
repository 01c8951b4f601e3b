"""The SQLite store on real files: every table, one-time codes, atomic rotation, restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivrbot.store import AuthCode, CallRecord, E911Record, SqliteStore, TokenRecord

pytestmark = pytest.mark.unit

NOW = time.time()  # timestamps in records; expiry is always relative to the current time


def token(n: int, *, expires_in: float = 60, refresh_in: float = 600) -> TokenRecord:
    now = time.time()
    return TokenRecord(
        access_digest=f"a{n:063d}",
        refresh_digest=f"r{n:063d}",
        app_scope="VIRTUAL_NUMBER",
        scope="WEBRTC,EMERGENCYSERVICES",
        client_id="client",
        created_at=now,
        expires_at=now + expires_in,
        refresh_expires_at=now + refresh_in,
    )


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(tmp_path / "store.db")
    yield s
    await s.close()


async def test_tokens(store: SqliteStore) -> None:
    one = token(1)
    await store.add_token(one)
    assert await store.token_by_access(one.access_digest) == one
    assert await store.token_by_refresh(one.refresh_digest) == one
    assert await store.token_by_access("nope") is None
    await store.set_token_user(one.access_digest, "vtn:5550001000")
    got = await store.token_by_access(one.access_digest)
    assert got is not None and got.user_id == "vtn:5550001000"
    revoked = await store.revoke_token(one.refresh_digest)  # by either digest
    assert revoked is not None and revoked.access_digest == one.access_digest
    got = await store.token_by_access(one.access_digest)
    assert got is not None and got.revoked
    assert await store.revoke_token("unknown") is None


async def test_replace_token_is_atomic_and_once(store: SqliteStore) -> None:
    await store.add_token(token(1))
    results = await asyncio.gather(
        store.replace_token(token(1).access_digest, token(2)),
        store.replace_token(token(1).access_digest, token(3)),
    )
    assert sorted(results) == [False, True]
    winner = 2 if results[0] else 3
    loser = 3 if winner == 2 else 2
    assert await store.token_by_access(token(winner).access_digest) is not None
    assert await store.token_by_access(token(loser).access_digest) is None
    old = await store.token_by_access(token(1).access_digest)
    assert old is not None and old.revoked
    assert not await store.replace_token("unknown", token(4))
    assert await store.token_by_access(token(4).access_digest) is None


async def test_startup_tokens_loads_live_ones_and_drops_dead_ones(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "t.db")
    await s.add_token(token(1))  # live
    await s.add_token(token(2, expires_in=-10))  # access expired, refresh still good
    await s.add_token(token(3, expires_in=-10, refresh_in=-5))  # dead
    await s.add_token(token(4))
    await s.revoke_token(token(4).access_digest)  # revoked
    live = await asyncio.to_thread(s.startup_tokens, time.time())
    assert [t.access_digest for t in live] == [token(1).access_digest]
    assert await s.token_by_refresh(token(2).refresh_digest) is not None
    assert await s.token_by_access(token(3).access_digest) is None
    await s.close()


async def test_clients_and_one_time_codes(store: SqliteStore) -> None:
    assert await store.client_secret_hash("app") is None
    await store.put_client("app", "hash-1")
    await store.put_client("app", "hash-2")
    assert await store.client_secret_hash("app") == "hash-2"
    code = AuthCode(
        "d" * 64, "app", "4255550100", "http://localhost/cb", "WEBRTCMOBILE", time.time() + 60
    )
    await store.add_auth_code(code)
    uses = await asyncio.gather(*(store.use_auth_code(code.digest, time.time()) for _ in range(5)))
    used = [u for u in uses if u is not None]
    assert len(used) == 1 and used[0].mobile_number == "4255550100" and used[0].used
    old = AuthCode(
        "e" * 64, "app", "4255550100", "http://localhost/cb", "WEBRTCMOBILE", time.time() - 1
    )
    await store.add_auth_code(old)
    assert await store.use_auth_code(old.digest, time.time()) is None  # expired
    assert await store.use_auth_code("f" * 64, time.time()) is None  # unknown


async def test_e911_identities_calls(store: SqliteStore) -> None:
    address = {"street": "Main St", "house_number": "1", "zip": "98101", "state": "WA"}
    record = E911Record("e1", address, True, "vtn:5550001000", NOW)
    await store.add_e911(record)
    await store.add_e911(E911Record("e2", {**address, "zip": "98102"}, False, None, NOW))
    assert await store.get_e911("e1") == record
    assert await store.get_e911("zz") is None
    assert await store.find_e911(dict(reversed(list(address.items())))) == record  # key order
    assert await store.find_e911({**address, "zip": "98102"}) is None  # not confirmed
    first = await store.add_identity("vtn:5550001000", "virtual")
    again = await store.add_identity("vtn:5550001000", "virtual")
    assert first == again == await store.get_identity("vtn:5550001000")
    assert await store.get_identity("nobody") is None
    calls = [
        CallRecord(f"c{i}", "sip:a@x", "tel:+15550001000", NOW + i, None, NOW + i + 1, "busy", 0)
        for i in range(3)
    ]
    for c in calls:
        await store.add_call(c)
    answered = CallRecord("c1", "sip:a@x", "tel:+1555", NOW + 1, NOW + 2, NOW + 9, "hangup", 7.0)
    await store.add_call(answered)  # the same call id again: the latest record wins
    assert await store.get_call("c1") == answered
    assert [c.id for c in await store.recent_calls()] == ["c2", "c1", "c0"]
    assert [c.id for c in await store.recent_calls(limit=1)] == ["c2"]


async def test_restart_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "restart.db"
    s = SqliteStore(path)
    one = token(1)
    await s.add_token(one)
    await s.put_client("app", "hash")
    code = AuthCode(
        "d" * 64, "app", "4255550100", "http://localhost/cb", "WEBRTCMOBILE", time.time() + 60
    )
    await s.add_auth_code(code)
    await s.add_e911(E911Record("e1", {"zip": "98101"}, True, None, NOW))
    await s.add_identity("ann@ivrbot.local", "account")
    record = CallRecord("c1", "sip:ann@ivrbot.local", "tel:+1", NOW, NOW + 1, NOW + 3, "hangup", 2)
    await s.add_call(record)
    await s.close()
    assert journal_mode(path) == "wal"

    s = SqliteStore(path)
    assert await s.token_by_access(one.access_digest) == one
    assert await s.client_secret_hash("app") == "hash"
    assert (await s.use_auth_code(code.digest, time.time())) is not None
    assert (await s.get_e911("e1")) is not None
    identity = await s.get_identity("ann@ivrbot.local")
    assert identity is not None and identity.kind == "account"
    assert await s.get_call("c1") == record
    await s.close()


async def test_memory_store_and_closing() -> None:
    s = SqliteStore(":memory:")
    await s.add_identity("x@y", "account")
    assert (await s.get_identity("x@y")) is not None
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await s.get_identity("x@y")


async def test_many_concurrent_writes(store: SqliteStore) -> None:
    await asyncio.gather(*(store.add_token(token(i)) for i in range(200)))
    live = await asyncio.to_thread(store.startup_tokens, time.time())
    assert len(live) == 200
