"""Campaign tables in the gateway's SQLite file (SQLAlchemy Core, WAL, one worker thread).

Every attempt is a row written before the dial (``ended_at`` empty) and completed after;
a contact is claimed by one UPDATE that only succeeds while it is pending, in the same
transaction that writes the attempt row, so no contact is dialled by two ticks (or two
processes) at once, and an attempt cut by a crash is found at the next start.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ivrbot.campaign.campaign import Campaign, CampaignError, State
from ivrbot.campaign.contacts import Contact
from ivrbot.store.sqlite import _pragmas

T = TypeVar("T")
metadata = MetaData()
campaigns = Table(
    "campaigns",
    metadata,
    Column("name", String, primary_key=True),
    Column("spec", Text, nullable=False),
    Column("state", String, nullable=False),
    Column("created_at", Float, nullable=False),
)
contacts = Table(
    "campaign_contacts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String, nullable=False),
    Column("number", String, nullable=False),
    Column("name", String, nullable=False, default=""),
    Column("zone", String, nullable=False),
    Column("country", String, nullable=False, default=""),
    Column("vars", Text, nullable=False, default="{}"),
    Column("line", Integer, nullable=False, default=0),
    Column("state", String, nullable=False, default="pending"),  # pending | dialing | done
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_try_at", Float, nullable=False, default=0.0),  # campaign time
    Column("outcome", String, nullable=False, default=""),  # of the latest attempt
    UniqueConstraint("campaign", "number"),
    Index("ix_contacts_due", "campaign", "state", "zone", "next_try_at"),
)
attempts = Table(
    "campaign_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign", String, nullable=False),
    Column("contact_id", Integer, nullable=False),
    Column("number", String, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),  # campaign time
    Column("ended_at", Float),  # None: in progress (or cut by a crash)
    Column("outcome", String, nullable=False, default=""),
    Column("answered_by", String, nullable=False, default=""),
    Column("flow_result", String, nullable=False, default=""),
    Column("recording", String, nullable=False, default=""),
    Column("call_id", String, nullable=False, default=""),
    Column("pid", Integer, nullable=False, default=0),
    UniqueConstraint("contact_id", "attempt"),
    Index("ix_attempts_campaign", "campaign", "outcome"),
)
dnc = Table(
    "campaign_dnc",
    metadata,
    Column("list", String, primary_key=True),  # '' : the global list, else a campaign
    Column("number", String, primary_key=True),
    Column("added_at", Float, nullable=False),
    Column("reason", String, nullable=False, default=""),
)
meta = Table(
    "campaign_meta",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

# APScheduler's job store (scheduler.py makes it): only its ids are read or deleted here
JOBS = Table("campaign_jobs", MetaData(), Column("id", String, primary_key=True))


def _job_ids(name: str) -> list[str]:
    return [f"{job}:{name}" for job in ("pace", "wake", "start", "stop")]


class CampaignStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path == ":memory:":
            raise CampaignError("campaigns need a database file (IVRBOT_DB), not :memory:")
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite:///{Path(self.path).resolve()}"
        self.engine = create_engine(self.url, connect_args={"check_same_thread": False})
        event.listen(self.engine, "connect", _pragmas)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ivrbot-campaigns")
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise CampaignError(f"cannot open the database {self.path!r}: {exc.orig}") from exc  # type: ignore[attr-defined]

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.engine.dispose()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store's worker thread (calls run in the order made)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    # campaigns -----------------------------------------------------------------------------
    def create(self, campaign: Campaign, people: list[Contact]) -> None:
        with self.engine.begin() as conn:
            try:
                conn.execute(
                    insert(campaigns).values(
                        name=campaign.name,
                        spec=json.dumps(campaign.to_dict()),
                        state=State.CREATED,
                        created_at=time.time(),
                    )
                )
            except IntegrityError as exc:
                raise CampaignError(
                    f"a campaign named {campaign.name!r} exists already (to create it again: "
                    f"ivrbot campaign delete {campaign.name})"
                ) from exc
            self._add_contacts(conn, campaign.name, people)

    @staticmethod
    def _add_contacts(conn: Connection, name: str, people: list[Contact]) -> None:
        if people:
            conn.execute(
                insert(contacts),
                [
                    {
                        "campaign": name,
                        "number": c.number,
                        "name": c.name,
                        "zone": c.zone,
                        "country": c.country,
                        "vars": json.dumps(c.vars),
                        "line": c.line,
                    }
                    for c in people
                ],
            )

    def campaign(self, name: str) -> tuple[Campaign, State]:
        with self.engine.connect() as conn:
            row = conn.execute(select(campaigns).where(campaigns.c.name == name)).first()
        if row is None:
            raise CampaignError(f"no campaign named {name!r} (ivrbot campaign list)")
        return Campaign.from_dict(json.loads(row.spec)), State(row.state)

    def names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(select(campaigns.c.name).order_by(campaigns.c.created_at)))

    def set_state(self, name: str, state: State) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(campaigns).where(campaigns.c.name == name).values(state=state))

    def delete(self, name: str) -> dict[str, int]:
        """Remove campaign ``name``, its contacts, attempts, scheduler jobs and notes, in one
        transaction (its do-not-call list stays: opt-outs outlive a campaign). Returns how
        many contacts and attempts went."""
        with self.engine.begin() as conn:
            gone = conn.execute(delete(campaigns).where(campaigns.c.name == name))
            if gone.rowcount != 1:
                raise CampaignError(f"no campaign named {name!r} (ivrbot campaign list)")
            people = conn.execute(delete(contacts).where(contacts.c.campaign == name))
            tries = conn.execute(delete(attempts).where(attempts.c.campaign == name))
            conn.execute(delete(meta).where(meta.c.key == note_key(name)))
            if inspect(conn).has_table(JOBS.name):
                conn.execute(delete(JOBS).where(JOBS.c.id.in_(_job_ids(name))))
        return {"contacts": people.rowcount, "attempts": tries.rowcount}

    def jobs(self, name: str) -> set[str]:
        """The scheduler jobs campaign ``name`` has ('pace', 'wake', 'start', 'stop')."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(JOBS.name):
                return set()
            ids = conn.scalars(select(JOBS.c.id).where(JOBS.c.id.in_(_job_ids(name))))
            return {job_id.partition(":")[0] for job_id in ids}

    # dialling ------------------------------------------------------------------------------
    def pending_zones(self, name: str) -> list[str]:
        with self.engine.connect() as conn:
            q = select(contacts.c.zone).distinct()
            q = q.where(contacts.c.campaign == name, contacts.c.state == "pending")
            return list(conn.scalars(q))

    def next_due(self, name: str, zones: list[str]) -> float | None:
        """The earliest retry time among pending contacts in ``zones``."""
        with self.engine.connect() as conn:
            q = select(func.min(contacts.c.next_try_at)).where(
                contacts.c.campaign == name, contacts.c.state == "pending",
                contacts.c.zone.in_(zones),
            )  # fmt: skip
            value = conn.scalar(q)
        return float(value) if value is not None else None

    def claim(self, name: str, zones: list[str], now: float) -> dict[str, Any] | None:
        """Take the next due contact in ``zones``: it becomes 'dialing' and its attempt row
        is written, in one transaction; None when none is due."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(contacts)
                .where(contacts.c.campaign == name, contacts.c.state == "pending",
                       contacts.c.zone.in_(zones), contacts.c.next_try_at <= now)
                .order_by(contacts.c.next_try_at, contacts.c.id)
                .limit(1)
            ).first()  # fmt: skip
            if row is None:
                return None
            taken = conn.execute(
                update(contacts)
                .where(contacts.c.id == row.id, contacts.c.state == "pending")
                .values(state="dialing", attempts=contacts.c.attempts + 1)
            )
            if taken.rowcount != 1:
                return None
            written = conn.execute(
                insert(attempts).values(
                    campaign=name, contact_id=row.id, number=row.number,
                    attempt=row.attempts + 1, started_at=now, pid=os.getpid(),
                )
            )  # fmt: skip
            attempt_id = written.inserted_primary_key[0]  # type: ignore[index]
        return {**row._asdict(), "attempt": row.attempts + 1, "attempt_id": attempt_id,
                "vars": json.loads(row.vars)}  # fmt: skip

    def settle(
        self,
        attempt_id: int,
        contact_id: int,
        result: dict[str, str],
        ended_at: float,
        next_try_at: float | None,
    ) -> None:
        """Complete an attempt row and move its contact on: pending again at
        ``next_try_at``, or done (None)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(ended_at=ended_at, **result)
            )
            conn.execute(
                update(contacts)
                .where(contacts.c.id == contact_id)
                .values(
                    state="done" if next_try_at is None else "pending",
                    next_try_at=next_try_at or 0.0,
                    outcome=result["outcome"],
                )
            )

    def unfinished(self, name: str) -> list[dict[str, Any]]:
        """Attempts with no end (the process died during them)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(attempts).where(attempts.c.campaign == name, attempts.c.ended_at.is_(None))
            )
            return [r._asdict() for r in rows]

    # reports -------------------------------------------------------------------------------
    def counts(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            by_state: dict[str, int] = dict(
                conn.execute(
                    select(contacts.c.state, func.count())
                    .where(contacts.c.campaign == name)
                    .group_by(contacts.c.state)
                ).all()
            )
            outcomes: dict[str, int] = dict(
                conn.execute(
                    select(attempts.c.outcome, func.count())
                    .where(attempts.c.campaign == name, attempts.c.ended_at.is_not(None))
                    .group_by(attempts.c.outcome)
                ).all()
            )
        return {"contacts": by_state, "outcomes": outcomes}

    def attempt_rows(self, name: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(attempts).where(attempts.c.campaign == name).order_by(attempts.c.id)
            )
            return [r._asdict() for r in rows]

    def report_rows(self, name: str) -> list[dict[str, Any]]:
        """Every attempt with its contact's name, zone, state, attempts so far and next try
        (``contact_*`` keys), in the order they were made."""
        c = contacts
        q = (
            select(attempts, c.c.name.label("contact_name"), c.c.zone.label("contact_zone"),
                   c.c.state.label("contact_state"), c.c.attempts.label("contact_attempts"),
                   c.c.next_try_at.label("contact_next_try_at"))
            .join(c, c.c.id == attempts.c.contact_id)
            .where(attempts.c.campaign == name)
            .order_by(attempts.c.id)
        )  # fmt: skip
        with self.engine.connect() as conn:
            return [r._asdict() for r in conn.execute(q)]

    def pending_by_zone(self, name: str) -> dict[str, float]:
        """The earliest next try (campaign time) of the pending contacts of each zone."""
        q = (
            select(contacts.c.zone, func.min(contacts.c.next_try_at))
            .where(contacts.c.campaign == name, contacts.c.state == "pending")
            .group_by(contacts.c.zone)
        )
        with self.engine.connect() as conn:
            return {zone: float(at) for zone, at in conn.execute(q).all()}

    # do-not-call ---------------------------------------------------------------------------
    def dnc_add(self, numbers: list[str], list_name: str = "", reason: str = "") -> int:
        now = time.time()
        with self.engine.begin() as conn:
            have = set(conn.scalars(select(dnc.c.number).where(dnc.c.list == list_name)))
            new = sorted(set(numbers) - have)
            if new:
                conn.execute(
                    insert(dnc),
                    [{"list": list_name, "number": n, "added_at": now, "reason": reason}
                     for n in new],
                )  # fmt: skip
        return len(new)

    def dnc_remove(self, number: str, list_name: str = "") -> bool:
        with self.engine.begin() as conn:
            gone = conn.execute(delete(dnc).where(dnc.c.list == list_name, dnc.c.number == number))
        return gone.rowcount > 0

    def dnc_listed(self, number: str, campaign: str) -> str | None:
        """The list ('' global, or the campaign's name) that has ``number``; None if none."""
        with self.engine.connect() as conn:
            return conn.scalar(
                select(dnc.c.list).where(dnc.c.number == number, dnc.c.list.in_(["", campaign]))
            )

    def dnc_numbers(self, list_name: str = "") -> list[str]:
        with self.engine.connect() as conn:
            q = select(dnc.c.number).where(dnc.c.list == list_name).order_by(dnc.c.number)
            return list(conn.scalars(q))

    # settings that outlive a process -------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(meta.c.value).where(meta.c.key == key))

    def set_meta(self, key: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(meta).where(meta.c.key == key))
            conn.execute(insert(meta).values(key=key, value=value))

    def del_meta(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(meta).where(meta.c.key == key))


def note_key(name: str) -> str:
    """The meta key of why campaign ``name`` was paused by ivrbot run (not the operator)."""
    return f"note:{name}"
