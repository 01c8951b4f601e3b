"""A bot: a Phone logged in as a flow's number, answering calls and running the flow."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import vosk

from ivrbot import call_events
from ivrbot.credentials import Credentials
from ivrbot.errors import PhoneException
from ivrbot.events import Event
from ivrbot.flow.admission import Admission
from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import EventHandler, Flow, FlowError
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.rooms import Rooms
from ivrbot.flow.sign_in import SignIn
from ivrbot.media.amd import AmdResult, AnsweringMachineDetector, BeepDetector
from ivrbot.media.frames import LISTEN_RATE
from ivrbot.media.hold import BOT_SIDE, FAR_END
from ivrbot.media.listener import Listener
from ivrbot.numbers import e164
from ivrbot.outcomes import Outcome, of_reason
from ivrbot.phone.call import ENDED, Call, CallState
from ivrbot.phone.phone import Phone
from ivrbot.speech.recognizer_pool import shared_pool
from ivrbot.speech.tts import Prompt, Synthesizer
from ivrbot.store.base import Store
from ivrbot.tasks import TaskSet
from ivrbot.timeline import Timeline

if TYPE_CHECKING:
    from ivrbot.core.sessions import Session
    from ivrbot.core.switch import SwitchCall
    from ivrbot.wire.gateway import Gateway

log = logging.getLogger(__name__)
RINGING = (CallState.CREATED, CallState.CONNECTING)  # a dialled call not yet answered
BEEP_WAIT_S = 20.0  # after a machine greeting, how long to wait for its beep
FINISH_S = 5.0  # a flow that hung up may take this long to finish (complete its recording)


class Bot:
    """Runs one flow: answers its number and runs the steps for every call.

    Each call has a session (a Phone) of its own; sessions are kept and reused.

    In the gateway's process (``gateway`` given, as ``ivrbot run`` does) the bot is the
    number's acceptor: the switch hands it every call for the number, it picks an idle
    session (logging in another when none is free) up to ``max_calls`` at once and the
    process-wide ``admission`` limit, and queues callers past that (ringback, then busy after
    ``queue_s``). Its sessions' media are frames in process (no WebRTC leg).

    Elsewhere (a bot process of its own) the gateway rings every session of the number; a
    busy one turns the call down, so an idle one takes it. This is also how several bot
    processes share one number.
    """

    def __init__(
        self,
        flow: Flow,
        gateway_url: str,
        tts: Synthesizer,
        model: vosk.Model | None = None,
        timeline: Timeline | None = None,
        store: Store | None = None,
        max_calls: int = 4,
        inbound: bool = True,
        keep_records: int = 200,
        keep_calls: int = 8,
        credentials: Credentials | None = None,
        gateway: Gateway | None = None,
        admission: Admission | None = None,
        queue_s: float = 30.0,
        recordings: Path = Path("recordings"),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.flow = flow
        self.recordings = recordings  # <recordings>/<flow>/<record id>.wav (Settings.recordings)
        self.env: Mapping[str, str] = env if env is not None else {}  # call.env (Settings.flow_env)
        self.gateway = gateway  # the gateway of this process, when the bot runs inside it
        self.admission = admission or Admission()
        self.queue_s = queue_s
        self._admitted: set[Phone] = set()  # sessions handed a call by admit()
        self.gateway_url = gateway_url
        self.tts = tts
        self.model = model
        self.timeline = timeline
        self.store = store  # where call records go (None: kept in memory only)
        self.max_calls = max_calls
        # Idle sessions kept ready: calls that ring at the same moment each find one (a
        # session logging in after the call rang would not be rung).
        self.spares = min(2, max_calls) if inbound else 0  # outbound only: sessions on demand
        self.inbound = inbound
        # the operator's credential: only its tokens may log in as the flow's (reserved) number
        self.credentials = credentials or Credentials.operator()
        self.phones: list[Phone] = []
        # the latest finished calls (their records, and the calls themselves for tests and
        # scenarios to inspect); older ones are only in the store
        self.records: deque[FlowRecord] = deque(maxlen=keep_records)
        self.finished: deque[FlowCall] = deque(maxlen=keep_calls)
        self.ended_count = 0  # every call ever finished (records may have dropped it)
        self._ended = asyncio.Condition()
        self._writes = TaskSet(f"bot {flow.name}")
        self.active: dict[Call, tuple[FlowCall, asyncio.Task[None] | None]] = {}
        self._adding: asyncio.Task[Phone] | None = None
        self._claims: dict[str, Phone] = {}  # caller -> the session answering its call
        # told of every note (step, input, call ended ...): the dashboard's live feed
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # told of each call's events with the call (webhooks: ivrbot/integrations)
        self.call_watchers: list[call_events.CallWatcher] = []
        self._rang: set[tuple[int, int]] = set()  # dialled calls whose ringback came early
        self._picked_up: dict[FlowCall, asyncio.Event] = {}  # dialled calls not yet answered
        self.sign_in = SignIn(gateway_url, self.credentials, gateway)
        self.rooms = Rooms(self.sign_in, flow.user_ids[0], f"bot:{flow.name}")  # Conference steps

    def note(self, event: str, **detail: Any) -> None:
        if self.timeline is not None:
            self.timeline.add("bot", event, **detail)
        for observer in self.observers:
            observer(event, detail)

    async def prompt(self, text: str, voice: str | None = None, flow: Flow | None = None) -> Prompt:
        flow = flow or self.flow
        return await self.tts.synth(text, voice or flow.voice, flow.rate)

    async def start(self) -> None:
        """Pre-synthesise the flow's prompts, log in and wait for calls."""
        for text in self.flow.prompts():
            await self.prompt(text)
        if self.model is not None and self.flow.needs_free_form():
            await shared_pool(self.model).ready()  # warm recognisers before the first call
        for _ in range(self.spares):
            await self._add_phone()
        if self.gateway is not None and self.inbound:
            for user_id in self.flow.user_ids:
                self.gateway.switch.acceptors[user_id] = self
        log.info("flow %s answers %s", self.flow.name, self.flow.user_ids[0])

    # admission (in the gateway's process) --------------------------------------------------
    async def admit(self, call: SwitchCall) -> Session | None:
        """The switch offers a call for the flow's number: the session to ring, once there
        is room (waiting up to ``queue_s``); None turns the caller away (busy)."""
        assert self.gateway is not None
        room = await self.admission.enter(lambda: len(self._admitted) < self.max_calls,
                                          self.queue_s)  # fmt: skip
        if not room:
            log.warning("flow %s: no room for a call from %s within %g s: busy",
                        self.flow.name, call.from_uri, self.queue_s)  # fmt: skip
            return None
        try:
            phone = next((p for p in self.phones if self._idle(p)), None)
            if phone is None:
                phone = await self._add_phone()
        except Exception:
            await self.admission.leave()
            raise
        session = self.gateway.sessions.get(phone.session_id or "")
        if session is None:  # its session is gone (expired): no place is taken
            await self.admission.leave()
            return None
        self._admitted.add(phone)
        self._ensure_spare()
        call_events.bot_rung(call)
        return session

    def released(self, session: Session) -> None:
        phone = next((p for p in self._admitted if p.session_id == session.id), None)
        if phone is not None:
            self._writes.spawn(self._free(phone))

    async def _free(self, phone: Phone) -> None:
        """``phone``'s admitted call is over: its place goes to the next caller."""
        if phone in self._admitted and not any(c.state not in ENDED for c in phone.calls):
            self._admitted.discard(phone)
            await self.admission.leave()

    def _idle(self, phone: Phone) -> bool:
        return phone.logged_in and not phone.calls and phone not in self._admitted

    async def _add_phone(self) -> Phone:
        phone = self.sign_in.phone(
            f"bot:{self.flow.name}:{len(self.phones) + 1}",
            hold_audio="silence",  # music on hold is not the caller: a held bot hears nothing
        )
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
        await self.sign_in.login(phone, self.flow.user_ids[0])
        self.phones.append(phone)
        return phone

    def _ensure_spare(self) -> None:
        """Keep ``spares`` idle sessions logged in (up to max_calls) for the next calls."""
        idle = [p for p in self.phones if self._idle(p)]
        if len(idle) >= self.spares or len(self.phones) >= self.max_calls:
            return
        if self._adding is None or self._adding.done():
            self._adding = asyncio.ensure_future(self._add_phone())
            self._adding.add_done_callback(self._added)

    def _added(self, task: asyncio.Task[Phone]) -> None:
        if task.cancelled():
            return
        if task.exception() is not None:
            log.error("flow %s: could not log in another session: %s", self.flow.name,
                      task.exception())  # fmt: skip
            return
        self._ensure_spare()

    def _dispatch(self, event: Event, payload: Any) -> Awaitable[None] | None:
        handlers = list(self.flow.handlers.get(event, []))
        return self._run_handlers(handlers, payload) if handlers else None

    @staticmethod
    async def _run_handlers(handlers: list[EventHandler], payload: Any) -> None:
        for handler in handlers:
            result = handler(payload)
            if inspect.isawaitable(result):
                await result

    async def reload(self, flow: Flow) -> None:
        """Use ``flow`` for new calls; calls in progress finish on the version they began with."""
        if flow.user_ids != self.flow.user_ids:
            raise FlowError(
                f"{flow.source}: flow {flow.name!r} changed its numbers: restart ivrbot run"
            )
        for text in flow.prompts():
            await self.prompt(text, flow=flow)
        self.flow = flow
        log.info("flow %s reloaded from %s", flow.name, flow.source)

    async def stop(self) -> None:
        if self.gateway is not None:
            for user_id in self.flow.user_ids:
                if self.gateway.switch.acceptors.get(user_id) is self:
                    del self.gateway.switch.acceptors[user_id]
        for _, task in list(self.active.values()):
            if task is not None:
                task.cancel()
        if self._adding is not None:
            self._adding.cancel()
        for phone in self.phones:
            await phone.close()
        await self.rooms.close()

    async def _on_incoming(self, phone: Phone, payload: dict[str, Any]) -> None:
        if not self.inbound or not self.flow.auto_answer:
            if not self.inbound:
                await phone.reject()
            return
        caller = str(payload.get("from", ""))
        busy = any(c.state != CallState.CREATED for c in phone.calls)
        admitted = phone in self._admitted  # the switch gave this session the call
        claimed = phone in self._claims.values() or self._claims.get(caller, phone) is not phone
        if busy or (not admitted and claimed):
            # Every session of the number rings: one idle session takes the call (the first
            # to see it claims it), the others turn it down at once so they stay free.
            await phone.reject()
            return
        if not admitted:
            self._claims[caller] = phone
        self.note(Event.CALL_INCOMING, caller=caller)
        listener = Listener()
        ringing = next((c for c in phone.calls if c.state == CallState.CREATED), None)
        call_id = call_events.gateway_call_id(self, ringing) if ringing is not None else ""
        try:
            if self.flow.rings:  # let it ring first, as a person would
                await asyncio.sleep(self.flow.rings * self.flow.ring_s)
            call = await phone.answer(remote_media=listener.on_frame)
        except PhoneException as exc:  # another process's session answered first, or the
            log.info("%s did not take the call: %s", phone.name, exc)  # caller hung up
            if ringing is not None and ringing.end_reason == "Call canceled":
                record = FlowRecord(self.flow.name, e164(caller), outcome=Outcome.ABANDONED,
                                    call_id=ringing.id or "")  # fmt: skip
                record.ended_at = time.time()
                call_events.flow_end(self.flow.name, record, call_id)
                await self._keep(record)  # the caller gave up while it rang
            await self._free(phone)
            return
        finally:
            if self._claims.get(caller) is phone:
                del self._claims[caller]
        self._begin(FlowCall(self, call, listener))
        self._ensure_spare()

    def _entry(self, phone: Phone, data: Any) -> tuple[Call, FlowCall] | None:
        call = next((c for c in phone.calls if c.index == data.index), None)
        if call is None or call not in self.active:
            return None
        return call, self.active[call][0]

    def _on_connected(self, phone: Phone, data: Any) -> None:
        found = self._entry(phone, data)
        if found is not None and self.active[found[0]][1] is None:
            self.note(Event.CALL_CONNECTED)
            call, flow_call = found
            self._answered(flow_call)
            call_events.flow_started(flow_call)
            outbound = call.direction == "outgoing" and flow_call.flow.detect_machine
            start = self._after_detection(flow_call) if outbound else flow_call.run()
            self.active[call] = (flow_call, asyncio.ensure_future(start))

    # outbound ------------------------------------------------------------------------------
    async def dial(
        self,
        number: str,
        vars: Mapping[str, Any] | None = None,
        setup: Callable[[FlowCall], None] | None = None,
    ) -> FlowCall:
        """Call ``number`` and run the flow when it answers (see Flow.detect_machine).

        ``vars`` are in the call's ``call.vars`` from its first step; ``setup`` is called
        with the call before anything is told of it (the watchers hear ``dialing`` first).
        Campaigns and ``POST /ivrbot/calls`` dial here; :meth:`ring_out` ends a call
        nobody answers."""
        idle = [p for p in self.phones if self._idle(p)]
        phone = idle[0] if idle else await self._add_phone()
        listener = Listener()
        call = await phone.dial(number, remote_media=listener.on_frame)
        flow_call = FlowCall(self, call, listener)
        flow_call.vars.update(vars or {})
        if setup is not None:
            setup(flow_call)
        if call.state in RINGING:
            self._picked_up[flow_call] = asyncio.Event()
        self._begin(flow_call)
        self.note("dialing", to=number)
        call_events.flow_dialing(flow_call)
        if (id(phone), call.index) in self._rang:  # it rang while dial() was under way
            self._rang.discard((id(phone), call.index))
            call_events.flow_ringing(flow_call)
        self._ensure_spare()
        return flow_call

    async def ring_out(self, flow_call: FlowCall, timeout_s: float) -> bool:
        """Wait until a dialled call is answered or over; one still ringing after
        ``timeout_s`` is hung up. True when it rang out unanswered."""
        waiting = self._picked_up.get(flow_call)
        if waiting is None or flow_call.done:
            return False
        try:
            await asyncio.wait_for(waiting.wait(), timeout_s)
            return False
        except TimeoutError:
            if flow_call.call.state in RINGING:  # the record (and the call-end line) says so
                flow_call.record.outcome = Outcome.NO_ANSWER
            try:
                await self.hangup(flow_call)
            except PhoneException as exc:
                log.info("flow %s: ending an unanswered call: %s", self.flow.name, exc)
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

    async def wait_records(self, count: int = 1, timeout_s: float = 30.0) -> deque[FlowRecord]:
        """Wait until ``count`` calls have finished (TimeoutError after ``timeout_s``); the
        records of the latest finished calls (``keep_records``), in the order they finished."""
        async with asyncio.timeout(timeout_s), self._ended:
            await self._ended.wait_for(lambda: self.ended_count >= count)
        return self.records

    async def finished_call(self, flow_call: FlowCall, timeout_s: float = 600) -> FlowRecord:
        """Wait until ``flow_call`` has ended; its record."""
        async with asyncio.timeout(timeout_s), self._ended:
            await self._ended.wait_for(lambda: flow_call.done)
        return flow_call.record

    async def _after_detection(self, flow_call: FlowCall) -> None:
        """Answering-machine detection on what the callee says first, then the flow."""
        loop = asyncio.get_running_loop()
        amd = AnsweringMachineDetector(LISTEN_RATE)
        beeps = BeepDetector(LISTEN_RATE)
        decided: asyncio.Future[AmdResult] = loop.create_future()
        beeped: asyncio.Future[bool] = loop.create_future()

        def tap(pcm: np.ndarray) -> None:
            if not decided.done():
                result = amd.feed(pcm)
                if result is not None:
                    decided.set_result(result)
            elif not beeped.done() and beeps.feed(pcm) is not None:
                beeped.set_result(True)

        flow_call.listener.taps.append(tap)
        try:
            budget = amd.settings.total_analysis_time / 1000 + 1.0
            try:
                result = await asyncio.wait_for(decided, budget)
            except TimeoutError:
                result = amd.finish()
            flow_call.vars["amd"] = result
            flow_call.vars["answered_by"] = result.verdict
            self.note("answered by", verdict=result.verdict, cause=result.cause)
            if result.verdict == "machine":
                try:
                    flow_call.vars["beep"] = await asyncio.wait_for(beeped, BEEP_WAIT_S)
                except TimeoutError:
                    flow_call.vars["beep"] = False
                self.note("beep", heard=flow_call.vars["beep"])
        finally:
            flow_call.listener.taps.remove(tap)
        await flow_call.run()

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
                await asyncio.wait({task}, timeout=FINISH_S)
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
            flow_call.record.ended_at = time.time()
        flow_call.done = True
        call_events.flow_ended(flow_call)
        self.finished.append(flow_call)
        await self._keep(flow_call.record)
        self.note(Event.CALL_DISCONNECTED, outcome=flow_call.record.outcome)

    async def _keep(self, record: FlowRecord) -> None:
        """A finished call's record: in ``records``, and in the store when there is one."""
        self.records.append(record)
        await self._store(record)
        async with self._ended:
            self.ended_count += 1
            self._ended.notify_all()

    async def _store(self, record: FlowRecord) -> None:
        """Write ``record`` to the store (when the call starts, and again when it ends)."""
        if self.store is not None:
            try:
                await self.store.add_flow_call(record.to_dict())
            except Exception as exc:
                log.error("could not store the record of a %s call: %s", self.flow.name, exc)

    def _begin(self, flow_call: FlowCall, task: asyncio.Task[None] | None = None) -> None:
        """The flow takes a call: it is active, and on record as in progress."""
        self.active[flow_call.call] = (flow_call, task)
        call_events.flow_taken(flow_call)
        flow_call.record.call_id = flow_call.call.id or ""
        self._writes.spawn(self._store(flow_call.record))

    async def hangup(self, flow_call: FlowCall) -> None:
        call: Call = flow_call.call
        phone = call.phone
        if isinstance(phone, Phone) and call is phone.current_call:
            await phone.hangup()
