"""The campaign scheduler inside ``ivrbot run``: APScheduler 3.x (AsyncIOScheduler) with its
job store in the same SQLite file as the campaigns.

Jobs per running campaign: ``pace:NAME`` (an interval trigger at the campaign's calls per
minute: each run may place one call), ``wake:NAME`` (a date trigger: when no contact may be
called now, the pace job is paused until the next window opening or retry time),
``start:NAME`` / ``stop:NAME`` (the campaign's start and stop times). Job functions are
module-level (the job store pickles references to them); the scheduler's executor hands
each run the service that owns it.

At start, attempts that a crash cut short are settled (``interrupted``) and retried by the
campaign's policy before any job runs.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ivrbot import clock as base_clock
from ivrbot.campaign.campaign import Campaign, CampaignError, Outcome, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.dialer import CampaignNotify, Dialer, next_try
from ivrbot.campaign.store import CampaignStore, note_key
from ivrbot.logs import campaign_event

if TYPE_CHECKING:
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)
# APScheduler warns at every pace tick skipped while the previous one still runs (a pace
# faster than the store answers): the achieved pace is in the report, not in the log
logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
ACTIONS = ("start", "pause", "resume", "cancel")
# The jobs: given their service by the service's executor (never run without it)


async def _pace(name: str, service: CampaignService | None = None) -> None:
    if service is not None and service.running:
        await service.tick(name)


async def _wake(name: str, service: CampaignService | None = None) -> None:
    if service is not None and service.running:
        service.wake(name)


async def _start_at(name: str, service: CampaignService | None = None) -> None:
    if service is not None and service.running:
        try:
            await service.control(name, "start")
        except CampaignError as exc:  # its flow is not served now: it stays created
            log.error("campaign %s did not start at its start_at: %s", name, exc)


async def _stop_at(name: str, service: CampaignService | None = None) -> None:
    if service is not None and service.running:
        await service.finish(name)


class _ServiceExecutor(AsyncIOExecutor):
    """Runs a campaign job against the service that owns the scheduler: the job store keeps
    a job's function by name and the campaign's name only (it pickles them), and this
    executor hands the job its service."""

    def __init__(self, service: CampaignService) -> None:
        super().__init__()
        self._service = service

    def submit_job(self, job: Job, run_times: list[datetime]) -> None:
        job.func = functools.partial(job.func, service=self._service)  # this run's copy of the job
        job.args = (job.args[-1],)  # earlier versions stored the database URL first
        super().submit_job(job, run_times)


def _parse_at(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class CampaignService:
    def __init__(
        self, store: CampaignStore, clock: Clock, bot_for: Callable[[str], Bot | None]
    ) -> None:
        self.store = store
        self.clock = clock
        self.bot_for = bot_for
        self.dialers: dict[str, Dialer] = {}
        self.scheduler = AsyncIOScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=store.engine, tablename="campaign_jobs")
            },
            executors={"default": _ServiceExecutor(self)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        self.ticks = 0  # pace job runs (bench: scheduler CPU per dispatched call)
        self.notify: CampaignNotify | None = None  # told of attempts and the finish (webhooks)
        self.running = False  # between start() and stop(): jobs run only then

    async def start(self) -> None:
        """Settle what a crash left, then run the jobs (those kept in the store too)."""
        self.running = True
        running = []
        for name in await self.store.run(self.store.names):
            campaign, state = await self.store.run(self.store.campaign, name)
            await self._recover(campaign)
            if state in (State.RUNNING, State.PAUSED):
                await self._dialer(campaign)
            if state is State.RUNNING:
                running.append(campaign)
        self.scheduler.start()
        for campaign in running:  # a pace paused until a wake-up the store lost (a wake-up
            self._pace_now(campaign)  # missed by more than the grace time is dropped)

    def _pace_now(self, campaign: Campaign) -> None:
        """The campaign's pace job, running from now."""
        self._remove("wake", campaign.name)
        self._add("pace", campaign.name, _pace, "interval",
                  seconds=60.0 / campaign.calls_per_minute, next_run_time=datetime.now(UTC))  # fmt: skip

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for dialer in self.dialers.values():
            dialer.close()
        self.running = False

    async def _recover(self, campaign: Campaign) -> None:
        now = self.clock.now().timestamp()
        for attempt in await self.store.run(self.store.unfinished, campaign.name):
            again = next_try(campaign, Outcome.INTERRUPTED, attempt["attempt"], now)
            await self.store.run(
                self.store.settle, attempt["id"], attempt["contact_id"],
                {"outcome": Outcome.INTERRUPTED}, now, again,
            )  # fmt: skip
            log.warning("campaign %s: attempt %d to %s was cut by a restart: %s",
                        campaign.name, attempt["attempt"], attempt["number"],
                        "retried later" if again is not None else "no attempts left")  # fmt: skip

    async def _dialer(self, campaign: Campaign) -> Dialer:
        dialer = self.dialers.get(campaign.name)
        if dialer is None:
            dialer = self.dialers[campaign.name] = Dialer(
                campaign, self.store, self.clock, self.bot_for, self.notify
            )
            await dialer.load_counts()
        return dialer

    # control ---------------------------------------------------------------------------------
    async def control(self, name: str, action: str) -> State:
        """start | pause | resume | cancel; CampaignError when it does not apply."""
        campaign, state = await self.store.run(self.store.campaign, name)
        allowed = {
            "start": (State.CREATED,),
            "pause": (State.RUNNING,),
            "resume": (State.PAUSED,),
            "cancel": (State.CREATED, State.RUNNING, State.PAUSED),
        }.get(action)
        if allowed is None:
            raise CampaignError(f"unknown action {action!r}: use {', '.join(ACTIONS)}")
        if state not in allowed:
            raise CampaignError(f"campaign {name} is {state}: it cannot {action}")
        if action in ("start", "resume") and not self.serves(campaign):
            raise CampaignError(self._unserved(campaign))
        if action in ("start", "resume", "cancel"):
            await self.store.run(self.store.del_meta, note_key(name))
        if action == "start":  # a campaign deleted and created again gets a new dialer
            self._drop_dialer(name)
        new = {"start": State.RUNNING, "pause": State.PAUSED, "resume": State.RUNNING,
               "cancel": State.CANCELED}[action]  # fmt: skip
        if action == "start" and campaign.start_at:
            at = _parse_at(campaign.start_at)
            if at > self.clock.now():  # not yet: a job starts it then
                self._add("start", name, _start_at, "date", run_date=self.clock.to_real(at))
                return state
        await self.store.run(self.store.set_state, name, new)
        campaign_event("campaign", campaign=name, state=str(new), was=str(state))
        if new is State.RUNNING:
            await self._dialer(campaign)
            self._pace_now(campaign)
            if campaign.stop_at:
                at = self.clock.to_real(_parse_at(campaign.stop_at))
                self._add("stop", name, _stop_at, "date", run_date=at)
        else:
            self._remove("pace", name)
            self._remove("wake", name)
            if new is State.CANCELED:
                self._remove("start", name)
                self._remove("stop", name)
        return new

    def serves(self, campaign: Campaign) -> bool:
        """Whether a bot of this ivrbot run serves the campaign's flow."""
        return self.bot_for(campaign.flow) is not None

    @staticmethod
    def _unserved(campaign: Campaign) -> str:
        return (f"campaign {campaign.name}: its flow {campaign.flow!r} is not served by this "
                f"ivrbot run (run it with the flows folder that has {campaign.flow}.py)")  # fmt: skip

    async def _pause_unserved(self, campaign: Campaign) -> None:
        """Running, but its flow is not served (ivrbot run restarted without it): paused with
        the reason noted (status shows it), before any contact is claimed and failed."""
        note = (f"its flow {campaign.flow!r} was not served by ivrbot run at "
                f"{self.clock.now():%Y-%m-%d %H:%M} UTC: serve it, then ivrbot campaign "
                f"resume {campaign.name}")  # fmt: skip
        await self.store.run(self.store.set_meta, note_key(campaign.name), note)
        await self.store.run(self.store.set_state, campaign.name, State.PAUSED)
        self._remove("pace", campaign.name)
        self._remove("wake", campaign.name)
        log.error("campaign %s paused: %s", campaign.name, self._unserved(campaign))
        campaign_event("campaign", campaign=campaign.name, state="paused", was="running")

    async def delete(self, name: str, force: bool = False) -> dict[str, int]:
        """Remove campaign ``name`` with its contacts and attempts (store.delete). A running
        or paused one only with ``force``: it is canceled first (a call in progress goes on
        to its end, unrecorded)."""
        _, state = await self.store.run(self.store.campaign, name)
        if state in (State.RUNNING, State.PAUSED) and not force:
            raise CampaignError(
                f"campaign {name} is {state}: cancel it first (ivrbot campaign cancel {name}) "
                "or delete it with --force"
            )
        for job in ("pace", "wake", "start", "stop"):
            self._remove(job, name)
        self._drop_dialer(name)
        gone = await self.store.run(self.store.delete, name)
        campaign_event("campaign", campaign=name, state="deleted", was=str(state))
        return gone

    def _drop_dialer(self, name: str) -> None:
        dialer = self.dialers.pop(name, None)
        if dialer is not None:
            dialer.close()

    async def finish(self, name: str) -> None:
        for job in ("pace", "wake", "stop"):
            self._remove(job, name)
        _, state = await self.store.run(self.store.campaign, name)
        if state in (State.RUNNING, State.PAUSED):
            await self.store.run(self.store.set_state, name, State.FINISHED)
            campaign_event("campaign", campaign=name, state="finished", was=str(state))
            if self.notify is not None:
                campaign, _ = await self.store.run(self.store.campaign, name)
                counts = await self.store.run(self.store.counts, name)
                self.notify(campaign, "finished", {"outcomes": counts["outcomes"]})

    def _add(self, job: str, name: str, fn: Any, trigger: str, **kw: Any) -> None:
        self.scheduler.add_job(fn, trigger, args=[name], id=f"{job}:{name}",
                               replace_existing=True, **kw)  # fmt: skip

    def _remove(self, job: str, name: str) -> None:
        try:
            self.scheduler.remove_job(f"{job}:{name}")
        except JobLookupError:
            pass

    # the pace --------------------------------------------------------------------------------
    async def tick(self, name: str) -> None:
        self.ticks += 1
        dialer = self.dialers.get(name)
        if dialer is None:
            campaign, state = await self.store.run(self.store.campaign, name)
            if state is not State.RUNNING:
                self._remove("pace", name)
                return
            dialer = await self._dialer(campaign)
        if not self.serves(dialer.campaign):
            await self._pause_unserved(dialer.campaign)
            return
        done = await dialer.tick()
        if done == "idle" and dialer.active == 0:
            await self._sleep_until_due(dialer)

    async def _sleep_until_due(self, dialer: Dialer) -> None:
        """Nothing may be dialled now: finish if nothing is left, else pause the pace until
        the next window opening or retry time."""
        name = dialer.campaign.name
        zones = await self.store.run(self.store.pending_zones, name)
        counts = await self.store.run(self.store.counts, name)
        if not zones and not counts["contacts"].get("dialing"):
            await self.finish(name)
            return
        now = self.clock.now()
        moments = []
        open_zones = [z for z in zones if dialer.windows.is_open(z, now)]
        due = await self.store.run(self.store.next_due, name, open_zones) if open_zones else None
        if due is not None:
            moments.append(datetime.fromtimestamp(due, UTC))
        for zone in zones:
            if zone not in open_zones:
                opening = dialer.windows.next_open(zone, now)
                if opening is not None:
                    moments.append(opening)
        if not moments:
            return
        at = max(min(moments), now)
        real = max(self.clock.to_real(at), self.clock.real_now() + timedelta(milliseconds=10))
        self.scheduler.pause_job(f"pace:{name}")
        self._add("wake", name, _wake, "date", run_date=real)
        log.info("campaign %s: nothing to dial until %s", name, at.isoformat())

    def wake(self, name: str) -> None:
        try:
            self.scheduler.resume_job(f"pace:{name}")
        except JobLookupError:
            pass


def clock_for(
    store: CampaignStore, setting: str, base: base_clock.Clock = base_clock.REAL_CLOCK
) -> Clock:
    """The campaign clock of ``setting`` on ``base`` (real time), keeping its origin across
    restarts (a fast clock goes on from where it was, it does not start again)."""
    clock = Clock.from_setting(setting, base)
    store.set_meta("clock-now", json.dumps({"setting": setting.strip()}))  # saved_clock reads
    if clock.real:
        return clock
    saved = store.get_meta("clock")
    if saved is not None:
        data = json.loads(saved)
        if data["setting"] == setting:
            return Clock(clock.speed, datetime.fromisoformat(data["start"]), data["t0"], base)
    assert clock.start is not None
    store.set_meta("clock", json.dumps({"setting": setting, "start": clock.start.isoformat(),
                                        "t0": base.time()}))  # fmt: skip
    saved_t0 = json.loads(store.get_meta("clock") or "{}")["t0"]
    return Clock(clock.speed, clock.start, saved_t0, base)


def saved_clock(store: CampaignStore) -> Clock:
    """The clock ivrbot run last ran this database's campaigns on (read only: for ``ivrbot
    campaign status`` and ``report`` in another process); real time if it never ran a
    faster one."""
    current, saved = store.get_meta("clock-now"), store.get_meta("clock")
    setting = json.loads(current)["setting"] if current is not None else ""
    if not setting or saved is None or json.loads(saved)["setting"] != setting:
        return Clock()
    data = json.loads(saved)
    return Clock(
        Clock.from_setting(setting).speed, datetime.fromisoformat(data["start"]), data["t0"]
    )
