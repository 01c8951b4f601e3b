"""Each call of a bot, from the ring to the record: answering (letting it ring first, as a
person would), dialling out and waiting for the answer, running the flow (after
answering-machine detection on a dialled call), keys and hold on the way, and finishing
(the outcome, the record). What the bot's Phones tell comes in here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivrbot import call_events
from ivrbot.clock import Clock
from ivrbot.errors import PhoneException
from ivrbot.events import Event
from ivrbot.flow.acceptor import Acceptor
from ivrbot.flow.answering_machine import detect_then_run
from ivrbot.flow.call import FlowCall
from ivrbot.flow.deadline import within
from ivrbot.flow.flow import EventHandler
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.record_keeper import RecordKeeper
from ivrbot.flow.session_pool import SessionPool
from ivrbot.media.hold import BOT_SIDE, FAR_END
from ivrbot.media.listener import Listener
from ivrbot.numbers import e164
from ivrbot.outcomes import Outcome, of_reason
from ivrbot.phone.call import Call, CallState
from ivrbot.phone.phone import Phone

if TYPE_CHECKING:
    from ivrbot.flow.runner import Bot

log = logging.getLogger(__name__)
RINGING = (CallState.CREATED, CallState.CONNECTING)  # a dialled call not yet answered
FINISH_S = 5.0  # a flow that hung up may take this long to finish (complete its recording)


class CallLifecycle:
    """The calls of one bot (see the module): ``active`` maps each call in progress to its
    FlowCall and the task running the flow (None until it is answered)."""

    def __init__(
        self,
        bot: Bot,
        pool: SessionPool,
        records: RecordKeeper,
        acceptor: Acceptor | None,
        clock: Clock,
    ) -> None:
        self.bot = bot  # the FlowCalls' bot (the flow, prompts, notes, rooms)
        self.pool = pool
        self.records = records
        self.acceptor = acceptor
        self.clock = clock
        self.active: dict[Call, tuple[FlowCall, asyncio.Task[None] | None]] = {}
        self._claims: dict[str, Phone] = {}  # caller -> the session answering its call
        self._rang: set[tuple[int, int]] = set()  # dialled calls whose ringback came early
        self._picked_up: dict[FlowCall, asyncio.Event] = {}  # dialled calls not yet answered

    def subscribe(self, phone: Phone) -> None:
        """Hear what ``phone`` tells (before it logs in)."""
        for event, handler in (
            (Event.CALL_INCOMING, self._on_incoming),
            (Event.CALL_CONNECTED, self._on_connected),
            (Event.CALL_RINGBACK_PROVIDED, self._on_ringback),
            (Event.CALL_DISCONNECTED, self._on_ended),
            (Event.CALL_CANCELED, self._on_ended),
            (Event.CALL_REJECTED, self._on_ended),
            (Event.CALL_TRANSFERRED, self._on_ended),  # a Transfer step handed it on
            (Event.CALL_MOVED, self._on_ended),  # a Move step: another session has it
            (Event.DTMF_TONE_RECEIVED, self._on_dtmf),
            (Event.CALL_HELD, self._on_hold),
            (Event.CALL_RESUMED, self._on_hold),
            (Event.CALL_REMOTE_HELD, self._on_hold),
            (Event.CALL_REMOTE_RESUMED, self._on_hold),
        ):
            phone.on(event, functools.partial(handler, phone))
        for event in Event:  # the flow's own handlers, looked up when the event comes
            phone.on(event, functools.partial(self._dispatch, event))

    def _dispatch(self, event: Event, payload: Any) -> Awaitable[None] | None:
        handlers = list(self.bot.flow.handlers.get(event, []))
        return _run_handlers(handlers, payload) if handlers else None

    def cancel_all(self) -> None:
        for _, task in list(self.active.values()):
            if task is not None:
                task.cancel()

    async def _free(self, phone: Phone) -> None:
        if self.acceptor is not None:
            await self.acceptor.free(phone)

    # answering -------------------------------------------------------------------------------
    async def _on_incoming(self, phone: Phone, payload: dict[str, Any]) -> None:
        bot = self.bot
        if not bot.inbound or not bot.flow.auto_answer:
            if not bot.inbound:
                await phone.reject()
            return
        caller = str(payload.get("from", ""))
        busy = any(c.state != CallState.CREATED for c in phone.calls)
        admitted = phone in self.pool.taken  # the switch gave this session the call
        claimed = phone in self._claims.values() or self._claims.get(caller, phone) is not phone
        if busy or (not admitted and claimed):
            # Every session of the number rings: one idle session takes the call (the first
            # to see it claims it), the others turn it down at once so they stay free.
            await phone.reject()
            return
        if not admitted:
            self._claims[caller] = phone
        bot.note(Event.CALL_INCOMING, caller=caller)
        listener = Listener()
        ringing = next((c for c in phone.calls if c.state == CallState.CREATED), None)
        call_id = call_events.gateway_call_id(bot, ringing) if ringing is not None else ""
        try:
            if bot.flow.rings:  # let it ring first, as a person would
                await self.clock.sleep(bot.flow.rings * bot.flow.ring_s)
            call = await phone.answer(remote_media=listener.on_frame)
        except PhoneException as exc:  # another process's session answered first, or the
            log.info("%s did not take the call: %s", phone.name, exc)  # caller hung up
            if ringing is not None and ringing.end_reason == "Call canceled":
                record = FlowRecord(bot.flow.name, e164(caller), outcome=Outcome.ABANDONED,
                                    call_id=ringing.id or "")  # fmt: skip
                record.ended_at = self.clock.time()
                call_events.flow_end(bot.flow.name, record, call_id)
                await self.records.keep(record)  # the caller gave up while it rang
            await self._free(phone)
            return
        finally:
            if self._claims.get(caller) is phone:
                del self._claims[caller]
        self._begin(FlowCall(bot, call, listener, clock=self.clock))
        self.pool.ensure_spare()

    def _entry(self, phone: Phone, data: Any) -> tuple[Call, FlowCall] | None:
        call = next((c for c in phone.calls if c.index == data.index), None)
        if call is None or call not in self.active:
            return None
        return call, self.active[call][0]

    def _on_connected(self, phone: Phone, data: Any) -> None:
        found = self._entry(phone, data)
        if found is not None and self.active[found[0]][1] is None:
            self.bot.note(Event.CALL_CONNECTED)
            call, flow_call = found
            self._answered(flow_call)
            call_events.flow_started(flow_call)
            outbound = call.direction == "outgoing" and flow_call.flow.detect_machine
            start = detect_then_run(flow_call, self.clock) if outbound else flow_call.run()
            self.active[call] = (flow_call, asyncio.ensure_future(start))

    def _begin(self, flow_call: FlowCall) -> None:
        """The flow takes a call: it is active, and on record as in progress."""
        self.active[flow_call.call] = (flow_call, None)
        call_events.flow_taken(flow_call)
        flow_call.record.call_id = flow_call.call.id or ""
        self.records.started(flow_call.record)

    # dialling --------------------------------------------------------------------------------
    async def dial(
        self,
        number: str,
        vars: Mapping[str, Any] | None = None,
        setup: Callable[[FlowCall], None] | None = None,
    ) -> FlowCall:
        """Call ``number``; the flow runs when it answers (see :meth:`Bot.dial`)."""
        phone = await self.pool.idle_or_new()
        listener = Listener()
        call = await phone.dial(number, remote_media=listener.on_frame)
        flow_call = FlowCall(self.bot, call, listener, clock=self.clock)
        flow_call.vars.update(vars or {})
        if setup is not None:
            setup(flow_call)
        if call.state in RINGING:
            self._picked_up[flow_call] = asyncio.Event()
        self._begin(flow_call)
        self.bot.note("dialing", to=number)
        call_events.flow_dialing(flow_call)
        if (id(phone), call.index) in self._rang:  # it rang while dial() was under way
            self._rang.discard((id(phone), call.index))
            call_events.flow_ringing(flow_call)
        self.pool.ensure_spare()
        return flow_call

    async def ring_out(self, flow_call: FlowCall, timeout_s: float) -> bool:
        """Wait until a dialled call is answered or over; one still ringing after
        ``timeout_s`` is hung up. True when it rang out unanswered."""
        waiting = self._picked_up.get(flow_call)
        if waiting is None or flow_call.done:
            return False
        try:
            await within(self.clock, waiting.wait(), timeout_s)
            return False
        except TimeoutError:
            if flow_call.call.state in RINGING:  # the record (and the call-end line) says so
                flow_call.record.outcome = Outcome.NO_ANSWER
            try:
                await self.hangup(flow_call)
            except PhoneException as exc:
                log.info("flow %s: ending an unanswered call: %s", flow_call.flow.name, exc)
            return True
        finally:
            self._picked_up.pop(flow_call, None)

    def _answered(self, flow_call: FlowCall) -> None:
        """A dialled call is answered or over: :meth:`ring_out` stops waiting."""
        waiting = self._picked_up.get(flow_call)
        if waiting is not None:
            waiting.set()

    def _on_ringback(self, phone: Phone, data: Any) -> None:
        """The callee's phone rings (the gateway plays ringback to the bot's call)."""
        found = self._entry(phone, data)
        if found is None:  # still inside dial(): told once the call is known
            self._rang.add((id(phone), data.index))
        else:
            call_events.flow_ringing(found[1])

    # on the way ------------------------------------------------------------------------------
    def _on_dtmf(self, phone: Phone, data: Any) -> None:
        found = self._entry(phone, data)
        if found is not None:
            call_events.key_pressed(found[1])
            found[1].listener.press(data.get("tone"), data.get("method", "rfc4733"))

    def _on_hold(self, phone: Phone, data: Any) -> None:
        """The call is held or resumed, by the bot's side or by the far end: while held the
        bot hears nothing and its Ask's timers pause (ivrbot.media.hold)."""
        found = self._entry(phone, data)
        if found is None:
            return
        call, flow_call = found
        hold = flow_call.listener.hold
        before = hold.held_by
        hold.set(BOT_SIDE, call.state == CallState.HELD)
        hold.set(FAR_END, call.remote_held)
        if hold.held_by != before:
            changed = sorted(before ^ hold.held_by)
            flow_call.note("hold" if hold.held_by > before else "resume", by=", ".join(changed))

    async def hangup(self, flow_call: FlowCall) -> None:
        call: Call = flow_call.call
        phone = call.phone
        if isinstance(phone, Phone) and call is phone.current_call:
            await phone.hangup()

    # finishing -------------------------------------------------------------------------------
    async def _on_ended(self, phone: Phone, data: Any) -> None:
        await self._free(phone)
        call = next((c for c in self.active if c.phone is phone and c.index == data.index), None)
        if call is None:
            return
        flow_call, task = self.active.pop(call)
        self._answered(flow_call)
        self._picked_up.pop(flow_call, None)
        if task is not None and not task.done() and task is not asyncio.current_task():
            if flow_call.hung_up:  # the flow ended the call: let it finish (its recording)
                with contextlib.suppress(TimeoutError):
                    await within(self.clock, asyncio.wait({task}), FINISH_S)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        flow_call.listener.close()
        if not flow_call.record.outcome:
            reason = str(data.get("message") or "") if hasattr(data, "get") else ""
            reason = reason or call.end_reason
            outcome: str = of_reason(reason, answered=False)  # "User busy": busy, ...
            answered = task is not None or call.direction == "incoming"
            if answered or outcome == Outcome.COMPLETED:  # the caller hung up, or the gateway
                outcome = flow_call.outcome_now(reason or "Call terminated")  # ended it
            elif outcome == Outcome.FAILED:
                flow_call.record.error = reason
            flow_call.record.outcome = outcome
        if flow_call.record.ended_at is None:  # never answered: no run() to set it
            flow_call.record.ended_at = self.clock.time()
        flow_call.done = True
        call_events.flow_ended(flow_call)
        await self.records.ended(flow_call)
        self.bot.note(Event.CALL_DISCONNECTED, outcome=flow_call.record.outcome)


async def _run_handlers(handlers: list[EventHandler], payload: Any) -> None:
    for handler in handlers:
        result = handler(payload)
        if inspect.isawaitable(result):
            await result
