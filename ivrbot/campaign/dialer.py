"""Placing one campaign's calls: claim a due contact in an open window, check the
do-not-call lists, dial through the flow's bot, classify the outcome, settle the attempt
and schedule the retry the policy asks for."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ivrbot.campaign.campaign import Campaign
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.store import CampaignStore
from ivrbot.campaign.windows import Windows
from ivrbot.logs import campaign_event
from ivrbot.outcomes import ANSWERED, Outcome
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)
ZONES_TTL_S = 2.0  # how long the list of zones with pending contacts is reused
# told of a campaign's events (webhooks): (campaign, 'attempt' | 'finished', detail)
CampaignNotify = Callable[[Campaign, str, dict[str, Any]], None]


def classify(flow_call: FlowCall) -> str:
    """The campaign outcome of a finished call: its flow record's (README "Outcomes")."""
    return flow_call.record.outcome or Outcome.FAILED


def _utc(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat(timespec="seconds")


def next_try(campaign: Campaign, outcome: str, attempt: int, now: float) -> float | None:
    """When to call again after ``attempt`` ended with ``outcome`` (None: never)."""
    retry = campaign.retry_for(outcome)
    if retry is None or attempt >= retry.max_attempts:
        return None
    return now + retry.delay_s


class Dialer:
    """The calls of one campaign; ``tick()`` is called at the campaign's pace."""

    def __init__(
        self,
        campaign: Campaign,
        store: CampaignStore,
        clock: Clock,
        bot_for: Callable[[str], Bot | None],
        notify: CampaignNotify | None = None,
    ) -> None:
        self.campaign = campaign
        self.notify = notify
        self.store = store
        self.clock = clock
        self.bot_for = bot_for
        self.windows = Windows(campaign)
        self.calls = TaskSet(f"campaign {campaign.name}")
        self.active = 0
        self.answered = 0
        self.abandoned = 0
        self._zones: tuple[float, list[str]] = (0.0, [])

    async def load_counts(self) -> None:
        counts = await self.store.run(self.store.counts, self.campaign.name)
        outcomes = counts["outcomes"]
        self.answered = sum(outcomes.get(o, 0) for o in ANSWERED)
        self.abandoned = outcomes.get(Outcome.ABANDONED, 0)

    @property
    def abandon_ratio(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0

    async def pending_zones(self) -> list[str]:
        at, zones = self._zones
        if self.clock.base.monotonic() - at > ZONES_TTL_S:
            zones = await self.store.run(self.store.pending_zones, self.campaign.name)
            self._zones = (self.clock.base.monotonic(), zones)
        return zones

    async def tick(self) -> str:
        """Place the next call if one may be placed now. Returns what happened: 'dialled',
        'full' (max_concurrent calls up), 'throttled' (abandon ratio over its limit),
        'dnc' (the contact was on a do-not-call list), or 'idle' (nothing due now)."""
        c = self.campaign
        if self.active >= c.max_concurrent:
            return "full"
        if self.abandon_ratio > c.max_abandon_ratio and self.active > 0:
            return "throttled"  # one call at a time until the ratio is back under its limit
        now = self.clock.now()
        zones = [z for z in await self.pending_zones() if self.windows.is_open(z, now)]
        if not zones:
            return "idle"
        contact = await self.store.run(self.store.claim, c.name, zones, now.timestamp())
        if contact is None:
            return "idle"
        listed = await self.store.run(self.store.dnc_listed, contact["number"], c.name)
        if listed is not None:
            await self._settle(contact, {"outcome": Outcome.DNC}, final=True)
            return "dnc"
        bot = self.bot_for(c.flow)
        if bot is None:
            log.error("campaign %s: no bot serves flow %r", c.name, c.flow)
            await self._settle(contact, {"outcome": Outcome.FAILED})
            return "dialled"
        self.active += 1
        self.calls.spawn(self._call(bot, contact))
        return "dialled"

    async def _call(self, bot: Bot, contact: dict[str, Any]) -> None:
        c = self.campaign
        result: dict[str, str] = {"outcome": Outcome.FAILED}
        try:
            result = await self._dial(bot, contact)
        except Exception as exc:
            log.error("campaign %s: call to %s failed: %s", c.name, contact["number"], exc)
        finally:
            self.active -= 1
        outcome = result["outcome"]
        if outcome in ANSWERED:
            self.answered += 1
            self.abandoned += outcome == Outcome.ABANDONED
        if outcome == Outcome.OPTED_OUT:  # before the attempt is settled: never again
            listed = "" if c.opt_out == "global" else c.name
            await self.store.run(
                self.store.dnc_add, [contact["number"]], listed, f"opted out during {c.name}"
            )
        await self._settle(contact, result, final=outcome == Outcome.OPTED_OUT)

    async def _dial(self, bot: Bot, contact: dict[str, Any]) -> dict[str, str]:
        c = self.campaign
        variables = {
            **contact["vars"], "campaign": c.name, "contact_name": contact["name"],
            "attempt": contact["attempt"], "machine_policy": c.machine,
        }  # fmt: skip
        flow_call = await bot.dial(contact["number"], vars=variables)
        await bot.ring_out(flow_call, c.ring_timeout_s)
        record = await bot.finished_call(flow_call)
        outcome = classify(flow_call)
        return {
            "outcome": outcome,
            "answered_by": str(flow_call.vars.get("answered_by") or ""),
            "flow_result": str(flow_call.vars.get("result") or ""),
            "recording": record.recordings[0] if record.recordings else "",
            "call_id": record.call_id,
            "record_id": record.id,
        }

    async def _settle(
        self, contact: dict[str, Any], result: dict[str, str], final: bool = False
    ) -> None:
        now = self.clock.now().timestamp()
        outcome = result["outcome"]
        again = None if final else next_try(self.campaign, outcome, contact["attempt"], now)
        row = {k: v for k, v in result.items() if k != "record_id"}  # the record: not a column
        await self.store.run(
            self.store.settle, contact["attempt_id"], contact["id"], row, now, again
        )
        campaign_event("attempt", campaign=self.campaign.name, number=contact["number"],
                       attempt=contact["attempt"], outcome=outcome,
                       retry_at=None if again is None else _utc(again))  # fmt: skip
        if self.notify is not None:  # webhooks (ivrbot/integrations)
            self.notify(self.campaign, "attempt", {
                "number": contact["number"], "contact_name": contact["name"],
                "attempt": contact["attempt"], "outcome": outcome, "final": again is None,
                "retry_at": None if again is None else _utc(again),
                "call": result.get("record_id") or None,
            })  # fmt: skip

    def close(self) -> None:
        """Stop: calls in progress are cut (their attempts are settled at the next start)."""
        self.calls.cancel_all()
