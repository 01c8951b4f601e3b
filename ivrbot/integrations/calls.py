"""Calls placed over HTTP (``POST /ivrbot/calls``): one outbound call from a flow to a
number, with variables and a webhook of its own, and its state afterwards.

A call is dialled the one way ivrbot dials out (:meth:`ivrbot.flow.runner.Bot.dial`, as
campaigns do): the flow's bot places it, ``vars`` land in ``call.vars`` before the first
step, and :meth:`~ivrbot.flow.runner.Bot.ring_out` hangs it up when nobody answers within
the ring timeout. Its id is the flow record's (``ivrbot calls show ID``).
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ivrbot.campaign.contacts import normalise
from ivrbot.errors import PhoneException
from ivrbot.integrations.events import Target, Webhooks, number_of
from ivrbot.integrations.signing import url_problem
from ivrbot.tasks import TaskSet

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)
KEEP = 1000  # calls whose state is kept in memory (older ones: read from the store)
MAX_RING_S = 600.0
FIELDS = ("flow", "to", "vars", "webhook", "webhook_steps", "ring_timeout_s")


class CallRefused(Exception):
    """A call that cannot be placed: ``status`` and one line saying why."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.field = field  # the body's field at fault (400s)


@dataclass
class CallRequest:
    flow: str
    to: str  # E.164
    vars: dict[str, Any] = field(default_factory=dict)
    webhook: str = ""
    webhook_steps: bool = False
    ring_timeout_s: float | None = None


def bad(name: str, why: str) -> CallRefused:
    return CallRefused(400, f"{name} ({why})", name)


def parse_request(body: dict[str, Any]) -> CallRequest:
    """The call a ``POST /ivrbot/calls`` body asks for; CallRefused 400 naming the field."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise bad(unknown[0], f"not a field of a call: use {', '.join(FIELDS)}")
    flow = body.get("flow")
    if not isinstance(flow, str) or not flow.strip():
        raise bad("flow", "required: the name of a flow this gateway serves")
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise bad("to", "required: the number to call, in E.164 like +15550001050")
    try:
        e164 = normalise(to)[0]
    except ValueError as exc:
        raise bad("to", f"{exc}: give it in E.164, like +15550001050") from None
    variables = body.get("vars", {})
    if not isinstance(variables, dict):
        raise bad("vars", 'an object of the call\'s variables, like {"name": "Pat"}')
    webhook = body.get("webhook") or ""
    if webhook:
        problem = url_problem(webhook)
        if problem:
            raise bad("webhook", problem)
    steps = body.get("webhook_steps", False)
    if not isinstance(steps, bool):
        raise bad("webhook_steps", "true or false")
    ring = body.get("ring_timeout_s")
    if ring is not None and (
        isinstance(ring, bool) or not isinstance(ring, int | float) or not 1 <= ring <= MAX_RING_S
    ):
        raise bad("ring_timeout_s", f"seconds from 1 to {MAX_RING_S:g}")
    return CallRequest(flow.strip(), e164, variables, str(webhook).strip(), steps,
                       float(ring) if ring is not None else None)  # fmt: skip


@dataclass
class PlacedCall:
    """A call placed over HTTP, as ``GET /ivrbot/calls/{id}`` shows it."""

    flow_call: FlowCall
    to: str
    webhook: str
    state: str = "dialing"  # dialing -> ringing -> answered -> completed
    answered_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        record = self.flow_call.record
        done = self.flow_call.done
        ended = record.ended_at if done else None
        return {
            "id": record.id,
            "flow": record.flow,
            "to": self.to,
            "from": number_of(self.flow_call.flow.user_ids[0]),
            "state": "completed" if done else self.state,
            "outcome": (record.outcome or "completed") if done else None,
            "error": record.error or None,
            "started_at": _utc(record.started_at),
            "answered_at": _utc(self.answered_at) if self.answered_at else None,
            "ended_at": _utc(ended) if ended else None,
            "duration_s": round(ended - self.answered_at, 1) if ended and self.answered_at else 0.0,
            "path": list(record.path),
            "recordings": [Path(p).name for p in record.recordings],
            "webhook": bool(self.webhook),
        }


def stored_call(record: dict[str, Any]) -> dict[str, Any]:
    """A call's state from its stored flow record (a call placed before a restart, or any
    call a flow ran)."""
    outcome = record.get("outcome") or "in-progress"
    ended = record.get("ended_at")
    return {
        "id": record["id"],
        "flow": record.get("flow"),
        "to": number_of(str(record.get("caller") or "")),
        "state": "completed" if ended else "in-progress",
        "outcome": outcome if ended else None,
        "error": record.get("error") or None,
        "started_at": _utc(record["started_at"]) if record.get("started_at") else None,
        "ended_at": _utc(ended) if ended else None,
        "path": list(record.get("path") or []),
        "recordings": [Path(p).name for p in record.get("recordings") or []],
    }


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")


class OutboundCalls:
    """Places calls for ``POST /ivrbot/calls`` and keeps their state."""

    def __init__(
        self,
        bot_for: Callable[[str], Bot | None],
        webhooks: Webhooks,
        ring_timeout_s: float = 60.0,
        flow_status: Callable[[], dict[str, list[str]]] | None = None,
    ) -> None:
        self.bot_for = bot_for
        self.webhooks = webhooks
        self.ring_timeout_s = ring_timeout_s
        self.flow_status = flow_status  # the flows served and the files that do not load
        self.calls: OrderedDict[str, PlacedCall] = OrderedDict()
        self._tasks = TaskSet("calls over HTTP")

    async def place(self, request: CallRequest) -> PlacedCall:
        """Dial ``request``; CallRefused (404 unknown flow, 409 not served, 429 at
        capacity) when it cannot be placed."""
        bot = self.bot_for(request.flow)
        if bot is None:
            raise self._no_flow(request.flow)
        if len(bot.active) >= bot.max_calls:
            raise CallRefused(
                429, f"flow {request.flow!r} is at capacity: {len(bot.active)} calls in progress "
                "(Flow(max_calls=N) or IVRBOT_FLOW_MAX_CALLS): try again later",
            )  # fmt: skip
        if self._call_event not in bot.call_watchers:
            bot.call_watchers.append(self._call_event)
        target = Target(request.webhook, request.webhook_steps) if request.webhook else None

        def setup(flow_call: FlowCall) -> None:
            if target is not None:
                self.webhooks.targets[flow_call] = target
            self._keep(PlacedCall(flow_call, request.to, request.webhook))

        try:
            flow_call = await bot.dial(request.to, vars=request.vars, setup=setup)
        except PhoneException as exc:
            raise CallRefused(409, f"the call to {request.to} could not be placed: {exc}") from exc
        placed = self.calls[flow_call.record.id]
        ring_s = request.ring_timeout_s or self.ring_timeout_s
        self._tasks.spawn(self._follow(bot, flow_call, ring_s))
        log.info("call over HTTP: flow %s to %s (record %s)", request.flow, request.to,
                 flow_call.record.id)  # fmt: skip
        return placed

    def _no_flow(self, name: str) -> CallRefused:
        status = self.flow_status() if self.flow_status is not None else {"loaded": []}
        broken = [p for p in status.get("broken", []) if Path(p).stem == name]
        if broken:
            return CallRefused(409, f"flow {name!r} is not served: its file {broken[0]} does "
                               "not load (see GET /health and the log)")  # fmt: skip
        served = ", ".join(status.get("loaded", [])) or "none"
        return CallRefused(404, f"no flow {name!r} is served here (flows served: {served})")

    def _keep(self, placed: PlacedCall) -> None:
        self.calls[placed.flow_call.record.id] = placed
        while len(self.calls) > KEEP:
            self.calls.popitem(last=False)

    def _call_event(self, flow_call: FlowCall, event: str, detail: dict[str, Any]) -> None:
        placed = self.calls.get(flow_call.record.id)
        if placed is None or placed.flow_call is not flow_call:
            return
        if event == "ringing" and placed.state == "dialing":
            placed.state = "ringing"
        elif event == "flow-start":
            placed.state, placed.answered_at = "answered", time.time()

    async def _follow(self, bot: Bot, flow_call: FlowCall, ring_s: float) -> None:
        """Hang up a call nobody answers within ``ring_s``; wait for its end."""
        await bot.ring_out(flow_call, ring_s)
        await bot.finished_call(flow_call)

    def get(self, call_id: str) -> PlacedCall | None:
        return self.calls.get(call_id)

    def close(self) -> None:
        self._tasks.cancel_all()
