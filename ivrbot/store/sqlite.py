"""The SQLite store: one file in WAL mode, SQLAlchemy Core, one worker thread.

Every database call runs on a single worker thread, so calls are serialised in the order
they were made (a write scheduled before a read is seen by it) and the event loop only
waits for a future. ``":memory:"`` gives a throwaway database (nothing survives a restart).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ivrbot.errors import IvrbotError
from ivrbot.outcomes import read, stored_as
from ivrbot.store.base import (
    AuthCode,
    CallLogEntry,
    CallRecord,
    E911Record,
    Identity,
    Store,
    TokenRecord,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

metadata = MetaData()
tokens = Table(
    "tokens",
    metadata,
    Column("access_digest", String(64), primary_key=True),
    Column("refresh_digest", String(64), nullable=False, unique=True),
    Column("app_scope", String(32), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("refresh_expires_at", Float, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("secret_hash", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)
auth_codes = Table(
    "auth_codes",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("mobile_number", String(32), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", String(64), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)
e911_ids = Table(
    "e911_ids",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("address", Text, nullable=False),  # canonical JSON (sorted keys)
    Column("confirmed", Boolean, nullable=False),
    Column("created_by", String(255), nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_e911_address", "address"),
)
identities = Table(
    "identities",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
)
call_records = Table(
    "call_records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("from_uri", Text, nullable=False),
    Column("to_uri", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("answered_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("reason", Text, nullable=False),
    Column("duration", Float, nullable=False),
    Column("outcome", String(32), nullable=False, server_default=""),
    Column("caller_leg", String(64), nullable=False, server_default=""),
    Column("callee_leg", String(64), nullable=False, server_default=""),
    Column("node", String(255), nullable=False, server_default=""),
    Index("ix_call_records_started", "started_at"),
)
flow_calls = Table(
    "flow_calls",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("flow", String(255), nullable=False),
    Column("caller", Text, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("data", Text, nullable=False),  # the whole record as JSON: path, prompts, inputs
    Column("call_id", String(64), nullable=False, server_default=""),  # the bot's call id
    Column("node", String(255), nullable=False, server_default=""),
    Index("ix_flow_calls_started", "started_at"),
    Index("ix_flow_calls_call", "call_id"),
)


def canonical_address(address: dict[str, Any]) -> str:
    return json.dumps(address, sort_keys=True, separators=(",", ":"))


def _pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def _token(row: Row[Any]) -> TokenRecord:
    m = row._mapping
    return TokenRecord(
        access_digest=m["access_digest"],
        refresh_digest=m["refresh_digest"],
        app_scope=m["app_scope"],
        scope=m["scope"],
        client_id=m["client_id"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        refresh_expires_at=m["refresh_expires_at"],
        user_id=m["user_id"],
        revoked=bool(m["revoked"]),
    )


def _e911(row: Row[Any]) -> E911Record:
    m = row._mapping
    return E911Record(
        m["id"], json.loads(m["address"]), bool(m["confirmed"]), m["created_by"], m["created_at"]
    )


def _call(row: Row[Any]) -> CallRecord:
    m = row._mapping
    return CallRecord(**{f: m[f] for f in CALL_FIELDS})


CALL_FIELDS = [f.name for f in dataclasses.fields(CallRecord)]


def _flow_data(text: str) -> dict[str, Any]:
    """A stored flow record, its outcome in today's names (README "Outcomes")."""
    data: dict[str, Any] = json.loads(text)
    data["outcome"] = read(str(data.get("outcome", "")), str(data.get("error") or ""))
    return data


def _add_missing_columns(conn: Connection) -> None:
    """Tables made by an older ivrbot get the columns added since (with their defaults)."""
    for table in metadata.sorted_tables:
        have = {r[1] for r in conn.exec_driver_sql(f"PRAGMA table_info({table.name})")}
        for column in table.columns:
            if column.name not in have and column.server_default is not None:
                default = column.server_default.arg  # type: ignore[attr-defined]
                conn.exec_driver_sql(
                    f"ALTER TABLE {table.name} ADD COLUMN {column.name} "
                    f"{column.type.compile(conn.dialect)} NOT NULL DEFAULT '{default}'"
                )


def _create(engine: Any) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        _add_missing_columns(conn)


class StoreError(IvrbotError, RuntimeError):
    """The database cannot be opened or used."""


class StoreClosed(StoreError):
    pass


class SqliteStore(Store):
    def __init__(self, path: str | Path = "ivrbot.db") -> None:
        self.path = str(path)
        memory = self.path == ":memory:"
        if not memory:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder of the database {self.path!r}: {exc}"
                ) from exc
        url = "sqlite://" if memory else f"sqlite:///{Path(self.path).resolve()}"
        extra: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        self._engine = create_engine(url, connect_args={"check_same_thread": False}, **extra)
        event.listen(self._engine, "connect", _pragmas)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ivrbot-store")
        self._closed = False
        try:
            self._executor.submit(_create, self._engine).result()
        except SQLAlchemyError as exc:
            self._executor.shutdown(wait=False)
            raise StoreError(
                f"cannot open the database {self.path!r} ({exc.__class__.__name__}: "
                f"{getattr(exc, 'orig', exc)}): check the path, or set IVRBOT_DB"
            ) from exc

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise StoreClosed(f"the store {self.path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _tx(self, fn: Callable[[Connection], T]) -> Callable[[], T]:
        """``fn`` run in one transaction (committed on success)."""

        def run() -> T:
            with self._engine.begin() as conn:
                return fn(conn)

        return run

    async def _in_tx(self, fn: Callable[[Connection], T]) -> T:
        return await self._run(self._tx(fn))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        # queued calls run first (one FIFO worker), then the pool is released
        await loop.run_in_executor(self._executor, self._engine.dispose)
        self._executor.shutdown(wait=False)

    def startup_tokens(self, now: float) -> list[TokenRecord]:
        def load(conn: Connection) -> list[TokenRecord]:
            conn.execute(
                delete(tokens).where(tokens.c.expires_at < now, tokens.c.refresh_expires_at < now)
            )
            conn.execute(delete(auth_codes).where(auth_codes.c.expires_at < now))
            rows = conn.execute(
                select(tokens).where(tokens.c.revoked.is_(False), tokens.c.expires_at > now)
            )
            return [_token(r) for r in rows]

        return self._executor.submit(self._tx(load)).result()

    # tokens ------------------------------------------------------------------------------
    async def add_token(self, record: TokenRecord) -> None:
        await self._in_tx(lambda c: c.execute(insert(tokens).values(**record.__dict__)))

    async def token_by_access(self, digest: str) -> TokenRecord | None:
        def get(conn: Connection) -> TokenRecord | None:
            row = conn.execute(select(tokens).where(tokens.c.access_digest == digest)).first()
            return _token(row) if row else None

        return await self._in_tx(get)

    async def token_by_refresh(self, digest: str) -> TokenRecord | None:
        def get(conn: Connection) -> TokenRecord | None:
            row = conn.execute(select(tokens).where(tokens.c.refresh_digest == digest)).first()
            return _token(row) if row else None

        return await self._in_tx(get)

    async def replace_token(self, old_access_digest: str, new: TokenRecord) -> bool:
        def replace(conn: Connection) -> bool:
            done = conn.execute(
                update(tokens)
                .where(tokens.c.access_digest == old_access_digest, tokens.c.revoked.is_(False))
                .values(revoked=True)
            )
            if done.rowcount != 1:
                return False
            conn.execute(insert(tokens).values(**new.__dict__))
            return True

        return await self._in_tx(replace)

    async def revoke_token(self, digest: str) -> TokenRecord | None:
        def revoke(conn: Connection) -> TokenRecord | None:
            match = or_(tokens.c.access_digest == digest, tokens.c.refresh_digest == digest)
            row = conn.execute(select(tokens).where(match)).first()
            if row is None:
                return None
            conn.execute(update(tokens).where(match).values(revoked=True))
            return _token(row)

        return await self._in_tx(revoke)

    async def set_token_user(self, access_digest: str, user_id: str) -> None:
        await self._in_tx(
            lambda c: c.execute(
                update(tokens)
                .where(tokens.c.access_digest == access_digest)
                .values(user_id=user_id)
            )
        )

    # OAuth clients and authorization codes -----------------------------------------------
    async def put_client(self, client_id: str, secret_hash: str) -> None:
        def put(conn: Connection) -> None:
            where = oauth_clients.c.client_id == client_id
            if conn.execute(select(oauth_clients.c.client_id).where(where)).first():
                conn.execute(update(oauth_clients).where(where).values(secret_hash=secret_hash))
            else:
                conn.execute(
                    insert(oauth_clients).values(
                        client_id=client_id, secret_hash=secret_hash, created_at=time.time()
                    )
                )

        await self._in_tx(put)

    async def client_secret_hash(self, client_id: str) -> str | None:
        def get(conn: Connection) -> str | None:
            where = oauth_clients.c.client_id == client_id
            value = conn.execute(select(oauth_clients.c.secret_hash).where(where)).scalar()
            return str(value) if value is not None else None

        return await self._in_tx(get)

    async def add_auth_code(self, code: AuthCode) -> None:
        await self._in_tx(lambda c: c.execute(insert(auth_codes).values(**code.__dict__)))

    async def use_auth_code(self, digest: str, now: float) -> AuthCode | None:
        def use(conn: Connection) -> AuthCode | None:
            where = auth_codes.c.digest == digest
            done = conn.execute(
                update(auth_codes)
                .where(where, auth_codes.c.used.is_(False), auth_codes.c.expires_at > now)
                .values(used=True)
            )
            if done.rowcount != 1:
                return None
            row = conn.execute(select(auth_codes).where(where)).one()
            m = row._mapping
            return AuthCode(
                m["digest"],
                m["client_id"],
                m["mobile_number"],
                m["redirect_uri"],
                m["scope"],
                m["expires_at"],
                True,
            )

        return await self._in_tx(use)

    # E911 ids ----------------------------------------------------------------------------
    async def add_e911(self, record: E911Record) -> None:
        values = {**record.__dict__, "address": canonical_address(record.address)}
        await self._in_tx(lambda c: c.execute(insert(e911_ids).values(**values)))

    async def get_e911(self, e911_id: str) -> E911Record | None:
        def get(conn: Connection) -> E911Record | None:
            row = conn.execute(select(e911_ids).where(e911_ids.c.id == e911_id)).first()
            return _e911(row) if row else None

        return await self._in_tx(get)

    async def find_e911(self, address: dict[str, Any]) -> E911Record | None:
        key = canonical_address(address)

        def find(conn: Connection) -> E911Record | None:
            row = conn.execute(
                select(e911_ids)
                .where(e911_ids.c.address == key, e911_ids.c.confirmed.is_(True))
                .order_by(e911_ids.c.created_at)
            ).first()
            return _e911(row) if row else None

        return await self._in_tx(find)

    # identities --------------------------------------------------------------------------
    async def add_identity(self, user_id: str, kind: str) -> Identity:
        def add(conn: Connection) -> Identity:
            where = identities.c.user_id == user_id
            row = conn.execute(select(identities).where(where)).first()
            if row is None:
                now = time.time()
                conn.execute(insert(identities).values(user_id=user_id, kind=kind, created_at=now))
                return Identity(user_id, kind, now)
            m = row._mapping
            return Identity(m["user_id"], m["kind"], m["created_at"])

        return await self._in_tx(add)

    async def get_identity(self, user_id: str) -> Identity | None:
        def get(conn: Connection) -> Identity | None:
            row = conn.execute(select(identities).where(identities.c.user_id == user_id)).first()
            if row is None:
                return None
            m = row._mapping
            return Identity(m["user_id"], m["kind"], m["created_at"])

        return await self._in_tx(get)

    # call records ------------------------------------------------------------------------
    def settle_interrupted(
        self, now: float, alive: Callable[[str], bool], why: str = "the server stopped"
    ) -> int:
        def settle(conn: Connection) -> int:
            count = 0
            open_calls = conn.execute(select(call_records).where(call_records.c.ended_at.is_(None)))
            for row in open_calls.all():
                if alive(row.node):
                    continue
                conn.execute(
                    update(call_records)
                    .where(call_records.c.id == row.id)
                    .values(ended_at=now, reason="interrupted", outcome="interrupted")
                )
                count += 1
            running = select(flow_calls).where(flow_calls.c.outcome == "in-progress")
            for row in conn.execute(running).all():
                if alive(row.node):
                    continue
                data = json.loads(row.data)
                data.update(outcome="interrupted", ended_at=now)
                data["error"] = data.get("error") or f"{why} during the call"
                conn.execute(
                    update(flow_calls)
                    .where(flow_calls.c.id == row.id)
                    .values(outcome="interrupted", data=json.dumps(data, ensure_ascii=False))
                )
                count += 1
            return count

        return self._executor.submit(self._tx(settle)).result()

    async def add_call(self, record: CallRecord) -> None:
        values = dict(record.__dict__, outcome=record.outcome)
        stmt = sqlite_insert(call_records).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=values)
        await self._in_tx(lambda c: c.execute(stmt))

    async def get_call(self, call_id: str) -> CallRecord | None:
        def get(conn: Connection) -> CallRecord | None:
            row = conn.execute(select(call_records).where(call_records.c.id == call_id)).first()
            return _call(row) if row else None

        return await self._in_tx(get)

    async def recent_calls(self, limit: int = 100) -> list[CallRecord]:
        def get(conn: Connection) -> list[CallRecord]:
            rows = conn.execute(
                select(call_records).order_by(call_records.c.started_at.desc()).limit(limit)
            )
            return [_call(r) for r in rows]

        return await self._in_tx(get)

    async def add_flow_call(self, record: dict[str, Any]) -> None:
        values = {
            "id": record["id"],
            "flow": record["flow"],
            "caller": record["caller"],
            "started_at": record["started_at"],
            "outcome": record["outcome"],
            "data": json.dumps(record, ensure_ascii=False),
            "call_id": record.get("call_id") or "",
            "node": record.get("node") or "",
        }
        stmt = sqlite_insert(flow_calls).values(**values)
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=values)
        await self._in_tx(lambda c: c.execute(stmt))

    async def flow_calls(self, limit: int = 50, flow: str | None = None) -> list[dict[str, Any]]:
        def get(conn: Connection) -> list[dict[str, Any]]:
            query = select(flow_calls.c.data).order_by(flow_calls.c.started_at.desc())
            if flow is not None:
                query = query.where(flow_calls.c.flow == flow)
            return [_flow_data(r.data) for r in conn.execute(query.limit(limit))]

        return await self._in_tx(get)

    async def call_log(
        self, limit: int = 50, flow: str | None = None, outcome: str | None = None
    ) -> list[CallLogEntry]:
        cr, fc = call_records, flow_calls
        joined = and_(fc.c.call_id != "", or_(fc.c.call_id == cr.c.caller_leg,
                                              fc.c.call_id == cr.c.callee_leg))  # fmt: skip

        def get(conn: Connection) -> list[CallLogEntry]:
            calls = select(cr, fc.c.data.label("flow_data")).select_from(cr.outerjoin(fc, joined))
            alone = select(fc.c.data).where(~select(cr.c.id).where(joined).exists())
            if flow is not None:
                calls, alone = calls.where(fc.c.flow == flow), alone.where(fc.c.flow == flow)
            if outcome is not None:  # the names it may be stored under; read() tells
                names = stored_as(outcome)
                calls = calls.where(func.coalesce(fc.c.outcome, cr.c.outcome).in_(names))
                alone = alone.where(fc.c.outcome.in_(names))
            calls = calls.order_by(cr.c.started_at.desc()).limit(limit)
            alone = alone.order_by(fc.c.started_at.desc()).limit(limit)
            entries = [
                CallLogEntry(_call(r), _flow_data(r.flow_data) if r.flow_data else None)
                for r in conn.execute(calls)
            ]
            entries += [CallLogEntry(None, _flow_data(r.data)) for r in conn.execute(alone)]
            entries.sort(key=lambda e: e.started_at, reverse=True)
            if outcome is not None:
                entries = [e for e in entries if e.outcome == outcome]
            return entries[:limit]

        return await self._in_tx(get)

    async def flow_call(self, record_id: str) -> dict[str, Any] | None:
        def get(conn: Connection) -> dict[str, Any] | None:
            query = select(flow_calls.c.data).where(flow_calls.c.id.startswith(record_id))
            rows = conn.execute(query.limit(2)).all()
            return _flow_data(rows[0].data) if len(rows) == 1 else None

        return await self._in_tx(get)
