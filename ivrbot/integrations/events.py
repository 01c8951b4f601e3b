"""Webhook events: what a bot's calls and the campaigns tell the integrator, as JSON.

A call's events go to the URL given for that call (``POST /ivrbot/calls``' ``webhook``),
else to its flow's (``Flow(webhook=...)``); a campaign's to its flow's. Every event is
``{"id", "type", "created_at", "sequence"?, ...}``; the types:

- ``call.initiated`` (a bot placed the call), ``call.ringing`` (the callee's phone rings),
  ``call.answered``, ``call.step`` (each step: only with ``webhook_steps``),
  ``call.recording`` (a recording's file is complete), ``call.completed`` (``outcome`` as
  in the call's record, ``duration_s`` from the answer, ``error``); their ``call`` object:
  ``id`` (the record id: ``GET /ivrbot/calls/{id}``, ``ivrbot calls show``), ``flow``,
  ``direction``, ``from``, ``to`` (E.164 numbers; a ``sip:`` address for a user);
  ``sequence`` counts the call's events from 1.
- ``campaign.attempt`` (an attempt settled: number, attempt, outcome, final, retry_at) and
  ``campaign.finished`` (outcome counts).
"""

from __future__ import annotations

import datetime
import logging
import secrets
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ivrbot.campaign.contacts import normalise
from ivrbot.integrations.delivery import WebhookSender
from ivrbot.numbers import identity_uri

if TYPE_CHECKING:
    from ivrbot.campaign.campaign import Campaign
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)


class WebhookEvent(StrEnum):
    CALL_INITIATED = "call.initiated"
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    CALL_STEP = "call.step"
    CALL_RECORDING = "call.recording"
    CALL_COMPLETED = "call.completed"
    CAMPAIGN_ATTEMPT = "campaign.attempt"
    CAMPAIGN_FINISHED = "campaign.finished"


# a bot's call events (ivrbot.call_events) -> webhook events
CALL_EVENTS = {
    "dialing": WebhookEvent.CALL_INITIATED,
    "ringing": WebhookEvent.CALL_RINGING,
    "flow-start": WebhookEvent.CALL_ANSWERED,
    "step": WebhookEvent.CALL_STEP,
    "recorded": WebhookEvent.CALL_RECORDING,  # a Record step
    "recording stopped": WebhookEvent.CALL_RECORDING,  # call.start_recording() ... stop
    "flow-end": WebhookEvent.CALL_COMPLETED,
}
RECORDING_PATH = "/ivrbot/records/{record}/recordings/{n}"  # the operator's API


def number_of(uri: str) -> str:
    """A party as webhooks write it: E.164 for numbers (``tel:+15550001050``,
    ``vtn:5550001050``, ``sip:15550001050@host``), the ``sip:`` URI for a user."""
    if uri.startswith("vtn:"):
        uri = identity_uri(uri)
    user = uri.split(":", 1)[1] if uri.startswith(("tel:", "sip:")) else uri
    user = user.split("@", 1)[0] if uri.startswith("sip:") else user
    try:
        return normalise(user)[0]
    except ValueError:
        return uri


def _utc(at: float) -> str:
    return datetime.datetime.fromtimestamp(at, datetime.UTC).isoformat(timespec="milliseconds")


@dataclass
class Target:
    """Where one call's events go, and whether each step is one."""

    url: str
    steps: bool = False


@dataclass
class _Progress:
    sequence: int = 0
    answered_at: float | None = None
    recordings: int = 0  # recordings announced


class Webhooks:
    """Turns bots' call events and campaigns' events into deliveries of ``sender``."""

    def __init__(self, sender: WebhookSender, bot_for: Callable[[str], Bot | None]) -> None:
        self.sender = sender
        self.bot_for = bot_for  # a campaign's flow -> its bot (the flow's webhook)
        self.targets: weakref.WeakKeyDictionary[FlowCall, Target] = weakref.WeakKeyDictionary()
        self._progress: weakref.WeakKeyDictionary[FlowCall, _Progress] = weakref.WeakKeyDictionary()

    def watch(self, bot: Bot) -> None:
        """Send the events of ``bot``'s calls (where their flow or the call asks)."""
        bot.call_watchers.append(self.call_event)

    def target_for(self, flow_call: FlowCall) -> Target | None:
        own = self.targets.get(flow_call)
        if own is not None:
            return own
        flow = flow_call.flow
        return Target(flow.webhook, flow.webhook_steps) if flow.webhook else None

    def call_event(self, flow_call: FlowCall, event: str, detail: dict[str, Any]) -> None:
        """A bot's call event (a :data:`ivrbot.call_events.CallWatcher`)."""
        kind = CALL_EVENTS.get(event)
        target = self.target_for(flow_call) if kind is not None else None
        if kind is None or target is None:
            return
        if kind is WebhookEvent.CALL_STEP and not target.steps:
            return
        progress = self._progress.setdefault(flow_call, _Progress())
        extra: dict[str, Any] = {}
        if kind is WebhookEvent.CALL_ANSWERED:
            progress.answered_at = time.time()
        elif kind is WebhookEvent.CALL_STEP:
            extra["step"] = detail.get("step")
        elif kind is WebhookEvent.CALL_RECORDING:
            recordings = self._new_recordings(flow_call, progress, event, detail)
            for recording in recordings:
                self._send_call(target, flow_call, progress, kind, {"recording": recording})
            return
        elif kind is WebhookEvent.CALL_COMPLETED:
            extra.update(self._completed(flow_call, progress))
        self._send_call(target, flow_call, progress, kind, extra)

    def _send_call(
        self,
        target: Target,
        flow_call: FlowCall,
        progress: _Progress,
        kind: WebhookEvent,
        extra: dict[str, Any],
    ) -> None:
        progress.sequence += 1
        payload = {
            **envelope(kind),
            "sequence": progress.sequence,
            "call": call_object(flow_call),
            **extra,
        }
        self.sender.send(target.url, f"call:{flow_call.record.id}", payload)

    @staticmethod
    def _new_recordings(
        flow_call: FlowCall, progress: _Progress, event: str, detail: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The recordings of the call whose files are complete and not yet announced."""
        files = flow_call.record.recordings
        if event == "recorded":  # a Record step: its file is the last one, if it kept one
            result = flow_call.vars.get(str(detail.get("step")))
            done = getattr(result, "path", None)
        else:
            done = detail.get("path")
        out = []
        for n, path in enumerate(files):
            if n >= progress.recordings and done is not None and str(path) == str(done):
                url = RECORDING_PATH.format(record=flow_call.record.id, n=n)
                out.append({"index": n, "file": str(path).rsplit("/", 1)[-1], "url": url,
                            "seconds": detail.get("seconds")})  # fmt: skip
                progress.recordings = n + 1
        return out

    @staticmethod
    def _completed(flow_call: FlowCall, progress: _Progress) -> dict[str, Any]:
        record = flow_call.record
        ended = record.ended_at or time.time()
        answered = progress.answered_at
        return {
            "outcome": record.outcome or "completed",
            "duration_s": round(ended - answered, 1) if answered is not None else 0.0,
            "error": record.error or None,
            "path": list(record.path),
        }

    def campaign_event(self, campaign: Campaign, event: str, detail: dict[str, Any]) -> None:
        """A campaign's event (a :data:`ivrbot.campaign.dialer.CampaignNotify`): to the
        webhook of the campaign's flow."""
        bot = self.bot_for(campaign.flow)
        if bot is None or not bot.flow.webhook:
            return
        kind = {"attempt": WebhookEvent.CAMPAIGN_ATTEMPT,
                "finished": WebhookEvent.CAMPAIGN_FINISHED}.get(event)  # fmt: skip
        if kind is None:
            return
        payload = {**envelope(kind), "campaign": {"name": campaign.name, "flow": campaign.flow},
                   **detail}  # fmt: skip
        self.sender.send(bot.flow.webhook, f"campaign:{campaign.name}", payload)


def envelope(kind: WebhookEvent) -> dict[str, Any]:
    return {"id": "evt_" + secrets.token_hex(8), "type": str(kind), "created_at": _utc(time.time())}


def call_object(flow_call: FlowCall) -> dict[str, Any]:
    """The ``call`` of a call's events."""
    call = flow_call.call
    own = number_of(flow_call.flow.user_ids[0])
    peer = number_of(call.peer)
    outgoing = call.direction == "outgoing"
    return {
        "id": flow_call.record.id,
        "flow": flow_call.flow.name,
        "direction": "outbound" if outgoing else "inbound",
        "from": own if outgoing else peer,
        "to": peer if outgoing else own,
    }
