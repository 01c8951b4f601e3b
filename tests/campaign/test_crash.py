"""A campaign of 200 contacts killed with SIGKILL three times mid-run and started again:
the attempts table shows every contact handled as the retry policy says, none lost, no
attempt of a contact overlapping another, every cut attempt settled.

The callees live in the campaign's process (this test is about the dialler's durability):
each turns the call down after ringing 0.2-0.6 s, so calls are in flight when it dies.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import sys
from pathlib import Path

import pytest

from ivrbot.campaign.dialer import next_try
from ivrbot.campaign.store import CampaignStore
from tests.campaign.crash_driver import CAMPAIGN

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONTACTS = 200


async def driver(db: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.campaign.crash_driver", str(db), str(CONTACTS),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while b"running" not in await proc.stdout.readline():
            pass
    return proc


async def test_sigkill_mid_run_loses_nobody_and_dials_nobody_twice(tmp_path: Path) -> None:
    db = tmp_path / "campaigns.db"
    rng = random.Random(14)
    for _ in range(3):
        proc = await driver(db)
        await asyncio.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    proc = await driver(db)
    assert proc.stdout is not None
    out = await asyncio.wait_for(proc.stdout.read(), 120)
    assert await proc.wait() == 0 and b"finished" in out

    store = CampaignStore(db)
    rows = store.attempt_rows("crash")
    by_contact: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        by_contact.setdefault(int(row["contact_id"]), []).append(row)  # type: ignore[call-overload]
    assert len(by_contact) == CONTACTS  # nobody lost
    interrupted = 0
    for attempts in by_contact.values():
        assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
        for before, after in itertools.pairwise(attempts):
            # one attempt at a time: the next began after the previous one was settled
            assert float(after["started_at"]) >= float(before["ended_at"])  # type: ignore[arg-type]
        for a in attempts:
            assert a["ended_at"] is not None and a["outcome"] in ("busy", "interrupted")
            interrupted += a["outcome"] == "interrupted"
        # the policy: every attempt but the last asked for a retry, the last for none
        for a in attempts[:-1]:
            assert next_try(CAMPAIGN, str(a["outcome"]), int(a["attempt"]), 0.0) is not None  # type: ignore[call-overload]
        last = attempts[-1]
        assert next_try(CAMPAIGN, str(last["outcome"]), int(last["attempt"]), 0.0) is None  # type: ignore[call-overload]
    assert 0 < interrupted  # the kills did cut calls short
    busy = sum(a["outcome"] == "busy" for a in rows)
    print(f"{len(rows)} attempts, {busy} busy, {interrupted} cut by SIGKILL")
    store.close()
