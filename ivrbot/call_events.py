"""Operator call events: the log line (``ivrbot.calls``) and the metrics at each point a
call changes. The gateway, the bot runner and FlowCall call these, one line each where the
event happens; nothing here changes a call.

Parties are written as data: numbers in E.164 (+15550001000), addresses without their
scheme (pat@ivrbot.local); outcomes are ivrbot.outcomes' names. Lines at INFO: ``call-in`` / ``call-joined`` and ``call-end`` (every call the gateway
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
from ivrbot.numbers import e164
from ivrbot.outcomes import Outcome, of_reason

if TYPE_CHECKING:
    from ivrbot.core.switch import SwitchCall
    from ivrbot.flow.call import FlowCall
    from ivrbot.flow.record import FlowRecord
    from ivrbot.flow.runner import Bot
    from ivrbot.phone.call import Call

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
# gateway call id -> the flow running the call in this process (its outcome once the flow has
# ended): the call-end line then says what flow-end says
_flows: dict[str, FlowCall | str] = {}
_bot_rung: set[str] = set()  # gateway calls an in-process bot was given to ring
# the caller's leg id -> the gateway's call id: a bot that dialled finds its call's id even
# when the call ended at once (not found); the latest KEEP calls
_caller_legs: dict[str, str] = {}
KEEP = 10_000  # a bound on what is kept per call (never reached by calls in progress)


def gateway_call(call: SwitchCall, known: bool) -> None:
    """The switch changed ``call``; ``known``: it was in progress before this change."""
    if not known and call.ended_at is None:
        metrics.CALLS_IN_PROGRESS.inc()
        event = "call-in" if call.answered_at is None else "call-joined"
        if call.caller is not None:
            _caller_legs[call.caller.id] = call.id
            if len(_caller_legs) > KEEP:
                del _caller_legs[next(iter(_caller_legs))]
        call_event(event, call=call.id, caller=e164(call.from_uri), number=e164(call.to_uri))
    elif known and call.ended_at is not None:
        metrics.CALLS_IN_PROGRESS.dec()
        outcome = _outcome(call)
        metrics.CALLS.labels(outcome).inc()
        answered = call.answered_at
        duration = round(call.ended_at - answered, 1) if answered else 0.0
        call_event("call-end", call=call.id, caller=e164(call.from_uri), number=e164(call.to_uri),
                   outcome=outcome, duration_s=duration)  # fmt: skip


def _outcome(call: SwitchCall) -> str:
    """How the gateway's call ended: a flow running it in this process has the word (the
    side that ended it tells the flow whether its caller hung up); else the reason."""
    flow = _flows.pop(call.id, None)
    rung_bot = call.id in _bot_rung
    _bot_rung.discard(call.id)
    if isinstance(flow, str):
        return flow
    answered = call.answered_at is not None
    if flow is not None and (answered or flow.record.outcome):
        bot_side = "callee" if flow.call.direction == "incoming" else "caller"
        return flow.outcome_now("" if call.ended_by == bot_side else call.reason)
    outcome = of_reason(call.reason, answered)
    if outcome == Outcome.CANCELED and rung_bot:  # the caller gave up while a bot let it ring
        return Outcome.ABANDONED
    return outcome


def bot_rung(call: SwitchCall) -> None:
    """An in-process bot takes ``call`` (it rings the bot's session)."""
    if call.ended_at is None:
        _bot_rung.add(call.id)


def flow_taken(flow_call: FlowCall) -> None:
    """A bot in this process runs ``flow_call`` (it answered it, or dialled it)."""
    call_id = _gateway_call_id(flow_call)
    gateway = flow_call.bot.gateway
    if gateway is not None and call_id in gateway.switch.calls and len(_flows) < KEEP:
        _info(flow_call).call_id = call_id
        _flows[call_id] = flow_call  # a call of this process's gateway, in progress


def _info(flow_call: FlowCall) -> _Running:
    running = _running.get(flow_call)
    if running is None:
        running = _running[flow_call] = _Running(_gateway_call_id(flow_call))
    return running


def _gateway_call_id(flow_call: FlowCall) -> str:
    return gateway_call_id(flow_call.bot, flow_call.call)


def gateway_call_id(bot: Bot, call: Call) -> str:
    """The id the gateway's lines give ``call`` of ``bot`` (the bot itself knows its leg's
    id; a bot in another process only that)."""
    leg_id = call.id or ""
    gateway = bot.gateway
    if gateway is not None and leg_id in _caller_legs:
        return _caller_legs[leg_id]
    session_id = getattr(call.phone, "session_id", None)
    session = gateway.sessions.get(session_id) if gateway and session_id else None
    handle = session.calls.get(leg_id) if session is not None else None
    return handle.call_id if handle is not None else leg_id


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
    call_event("flow-start", call=running.call_id, flow=flow_call.flow.name,
               caller=e164(call.peer), number=e164(flow_call.flow.user_ids[0]),
               direction=call.direction,
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
    call_id = _info(flow_call).call_id
    if call_id in _flows:  # the gateway's call goes on (the caller is in a room): same word
        _flows[call_id] = record.outcome or Outcome.COMPLETED
    flow_end(flow_call.flow.name, record, call_id)
    _running.pop(flow_call, None)
    _tell(flow_call, "flow-end")


def flow_end(flow: str, record: FlowRecord, call_id: str) -> None:
    """The flow-end line and count of ``record`` (a call of flow ``flow``; ``call_id`` the
    gateway's id of it): also for a call the caller gave up while the bot let it ring."""
    outcome = record.outcome or Outcome.COMPLETED
    metrics.FLOW_CALLS.labels(flow, outcome).inc()
    duration = round((record.ended_at or time.time()) - record.started_at, 1)
    call_event("flow-end", call=call_id, flow=flow, outcome=outcome, duration_s=duration,
               steps=len(record.path), error=record.error or None,
               record=record.id)  # fmt: skip
