"""Operator call events: the log line (``ivrbot.calls``) and the metrics at each point a
call changes. The gateway, the bot runner and FlowCall call these, one line each where the
event happens; nothing here changes a call.

Lines at INFO: ``call-in`` / ``call-joined`` and ``call-end`` (every call the gateway
carries), ``flow-start``, ``step``, ``input``, transfers, moves, conferences, recordings and
``flow-end`` (calls run by flows). Prompts, barge-in and the like are DEBUG.

A bot's ``call_watchers`` (webhooks) are told of each of its calls' events with the call:
``dialing`` and ``ringing`` (calls the bot places), ``flow-start``, every note (``step``,
``input``, ``recorded`` ...) and ``flow-end``.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ivrbot import metrics
from ivrbot.logs import call_event

if TYPE_CHECKING:
    from ivrbot.flow.call import FlowCall
    from ivrbot.gateway.switch import SwitchCall

# FlowCall.note events worth an INFO line (the rest are DEBUG)
INFO_NOTES = frozenset({"step", "transfer", "transfer result", "move", "conference",
                        "conference result", "recorded", "transferred", "moved", "hold",
                        "resume"})  # fmt: skip
PROMPTS = frozenset({"prompt", "play"})
log = logging.getLogger(__name__)
# told of a flow call's event: (the call, event, detail); must not block or raise
CallWatcher = Callable[["FlowCall", str, dict[str, Any]], None]


@dataclass
class _Running:
    call_id: str  # the gateway's call id (as on call-in / call-end), else the bot's leg id
    answered_at: float | None = None  # time.monotonic() the flow began (inbound calls)
    key_at: float | None = None  # the latest keypad press not yet followed by a prompt


_running: weakref.WeakKeyDictionary[FlowCall, _Running] = weakref.WeakKeyDictionary()


def gateway_call(call: SwitchCall, known: bool) -> None:
    """The switch changed ``call``; ``known``: it was in progress before this change."""
    if not known and call.ended_at is None:
        metrics.CALLS_IN_PROGRESS.inc()
        event = "call-in" if call.answered_at is None else "call-joined"
        call_event(event, call=call.id, caller=call.from_uri, number=call.to_uri)
    elif known and call.ended_at is not None:
        metrics.CALLS_IN_PROGRESS.dec()
        outcome = metrics.outcome_of(call.reason)
        metrics.CALLS.labels(outcome).inc()
        answered = call.answered_at
        duration = round(call.ended_at - answered, 1) if answered else 0.0
        call_event("call-end", call=call.id, caller=call.from_uri, number=call.to_uri,
                   outcome=outcome, duration_s=duration)  # fmt: skip


def _info(flow_call: FlowCall) -> _Running:
    running = _running.get(flow_call)
    if running is None:
        running = _running[flow_call] = _Running(_gateway_call_id(flow_call))
    return running


def _gateway_call_id(flow_call: FlowCall) -> str:
    """The id the gateway's lines give the call (the bot itself knows its leg's id)."""
    leg_id = flow_call.call.id or ""
    gateway = flow_call.bot.gateway
    session_id = getattr(flow_call.call.phone, "session_id", None)
    session = gateway.sessions.get(session_id) if gateway and session_id else None
    leg = session.legs.get(leg_id) if session is not None else None
    return leg.call.id if leg is not None else leg_id


def _tell(flow_call: FlowCall, event: str, detail: dict[str, Any] | None = None) -> None:
    """The bot's call watchers hear of ``event`` (one failing watcher is logged, not raised)."""
    for watcher in flow_call.bot.call_watchers:
        try:
            watcher(flow_call, event, detail or {})
        except Exception:
            log.exception("a watcher of flow %s failed on %s", flow_call.flow.name, event)


def flow_dialing(flow_call: FlowCall) -> None:
    """A bot placed ``flow_call`` (the gateway took it; the callee is being rung)."""
    _tell(flow_call, "dialing")


def flow_ringing(flow_call: FlowCall) -> None:
    """The callee of a call the bot placed is ringing."""
    _tell(flow_call, "ringing")


def flow_started(flow_call: FlowCall) -> None:
    """A flow begins to run ``flow_call`` (it was answered, or the callee answered)."""
    call = flow_call.call
    running = _info(flow_call)
    if call.direction == "incoming":
        running.answered_at = time.monotonic()
    call_event("flow-start", call=running.call_id, flow=flow_call.flow.name, caller=call.peer,
               number=flow_call.flow.user_ids[0], direction=call.direction,
               record=flow_call.record.id)  # fmt: skip
    _tell(flow_call, "flow-start")


def key_pressed(flow_call: FlowCall) -> None:
    _info(flow_call).key_at = time.monotonic()


def flow_note(flow_call: FlowCall, event: str, detail: dict[str, Any]) -> None:
    """Something happened in a flow (FlowCall.note): a line, and prompt latencies."""
    if event in PROMPTS:
        _prompt_started(flow_call)
    _tell(flow_call, event, detail)
    if event == "error":
        return  # FlowCall logs the failure (file and line); flow-end has outcome=error
    ids = {"call": _info(flow_call).call_id, "flow": flow_call.flow.name}
    if event == "input":
        # the value is already as it may be shown (Answer.shown: the one masking function)
        call_event("input", **ids, step=detail.get("step"), outcome=detail.get("outcome"),
                   value=detail.get("value") or None, method=detail.get("method"))  # fmt: skip
        return
    level = logging.INFO if event in INFO_NOTES else logging.DEBUG
    call_event(event.replace(" ", "-"), level, **{**ids, **detail})


def _prompt_started(flow_call: FlowCall) -> None:
    timing = _info(flow_call)
    now = time.monotonic()
    if timing.answered_at is not None:
        metrics.ANSWER_TO_PROMPT.observe(now - timing.answered_at)
        timing.answered_at = None
    if timing.key_at is not None:
        metrics.KEY_TO_PROMPT.observe(now - timing.key_at)
        timing.key_at = None


def speech_recognised(outcome: str, seconds: float) -> None:
    """A listening turn ended with ``outcome`` ``seconds`` after the endpoint was found."""
    if outcome != "noinput":
        metrics.ASR_LATENCY.observe(seconds)


def flow_ended(flow_call: FlowCall) -> None:
    record = flow_call.record
    outcome = record.outcome or "completed"
    metrics.FLOW_CALLS.labels(flow_call.flow.name, outcome).inc()
    duration = round((record.ended_at or time.time()) - record.started_at, 1)
    call_event("flow-end", call=_info(flow_call).call_id, flow=flow_call.flow.name,
               outcome=outcome, duration_s=duration, steps=len(record.path),
               error=record.error or None, record=record.id)  # fmt: skip
    _running.pop(flow_call, None)
    _tell(flow_call, "flow-end")
