"""A bot: Phones logged in as a flow's number, answering calls and running the flow.

:class:`Bot` is the facade; each responsibility is a module of its own: signing in
(:mod:`~ivrbot.flow.sign_in`: in the gateway's process without a socket), the sessions
(:mod:`~ivrbot.flow.session_pool`), admission of the switch's calls
(:mod:`~ivrbot.flow.acceptor`), each call from ring to record
(:mod:`~ivrbot.flow.call_lifecycle`, with :mod:`~ivrbot.flow.answering_machine`), the
records (:mod:`~ivrbot.flow.record_keeper`) and what the bot tells (:mod:`~ivrbot.flow.feed`:
the timeline, the dashboard, webhooks)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vosk

from ivrbot import call_events
from ivrbot.clock import REAL_CLOCK, Clock
from ivrbot.credentials import Credentials
from ivrbot.flow.acceptor import Acceptor
from ivrbot.flow.admission import Admission
from ivrbot.flow.call import FlowCall
from ivrbot.flow.call_lifecycle import CallLifecycle
from ivrbot.flow.feed import Feed
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.record import FlowRecord
from ivrbot.flow.record_keeper import RecordKeeper
from ivrbot.flow.rooms import Rooms
from ivrbot.flow.session_pool import SessionPool
from ivrbot.flow.sign_in import SignIn
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.speech.recognizer_pool import shared_pool
from ivrbot.speech.tts import Prompt, Synthesizer
from ivrbot.store.base import Store
from ivrbot.timeline import Timeline

if TYPE_CHECKING:
    import asyncio

    from ivrbot.core.sessions import Session
    from ivrbot.core.switch import SwitchCall
    from ivrbot.wire.gateway import Gateway

log = logging.getLogger(__name__)


class Bot:
    """Runs one flow: answers its number and runs the steps for every call.

    Each call has a session (a Phone) of its own; sessions are kept and reused.

    In the gateway's process (``gateway`` given, as ``ivrbot run`` does) the bot attaches
    inside the gateway (no socket, media as frames) and is the number's acceptor: the switch
    hands it every call for the number, up to ``max_calls`` at once and the process-wide
    ``admission`` limit, queueing callers past that (ringback, then busy after ``queue_s``).

    Elsewhere (a bot process of its own) the gateway rings every session of the number; a
    busy one turns the call down, so an idle one takes it. This is also how several bot
    processes share one number.

    ``clock``: what the bot's calls read the time from and wait on (rings, ring-out and
    detection timeouts, the flow's own pauses); the real one by default.
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
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.flow = flow
        self.recordings = recordings  # <recordings>/<flow>/<record id>.wav (Settings.recordings)
        self.env: Mapping[str, str] = env if env is not None else {}  # call.env (Settings.flow_env)
        self.gateway = gateway  # the gateway of this process, when the bot runs inside it
        self.gateway_url = gateway_url
        self.tts = tts
        self.model = model
        self.inbound = inbound
        self.max_calls = max_calls
        # the operator's credential: only its tokens may log in as the flow's (reserved) number
        self.credentials = credentials or Credentials.operator()
        label = f"bot:{flow.name}"
        self.feed = Feed(timeline)
        self.keeper = RecordKeeper(f"flow {flow.name}", store, keep_records, keep_calls)
        self.sign_in = SignIn(gateway_url, self.credentials, gateway)
        spares = min(2, max_calls) if inbound else 0  # outbound only: sessions on demand
        self.pool = SessionPool(
            self.sign_in, label, flow.user_ids[0], max_calls, spares, self._subscribe
        )
        self.acceptor = (
            Acceptor(gateway, self.pool, admission or Admission(), max_calls, queue_s, label)
            if gateway is not None
            else None
        )
        self.calls = CallLifecycle(self, self.pool, self.keeper, self.acceptor, clock)
        self.rooms = Rooms(self.sign_in, flow.user_ids[0], label)  # Conference steps

    def _subscribe(self, phone: Phone) -> None:
        self.calls.subscribe(phone)

    # what the parts hold, as the bot's ---------------------------------------------------------
    @property
    def phones(self) -> list[Phone]:
        return self.pool.phones

    @property
    def active(self) -> dict[Call, tuple[FlowCall, asyncio.Task[None] | None]]:
        return self.calls.active

    @property
    def records(self) -> deque[FlowRecord]:
        return self.keeper.records

    @property
    def finished(self) -> deque[FlowCall]:
        return self.keeper.finished

    @property
    def ended_count(self) -> int:
        return self.keeper.ended_count

    @property
    def store(self) -> Store | None:
        return self.keeper.store

    @property
    def timeline(self) -> Timeline | None:
        return self.feed.timeline

    @property
    def observers(self) -> list[Callable[[str, dict[str, Any]], None]]:
        return self.feed.observers

    @property
    def call_watchers(self) -> list[call_events.CallWatcher]:
        return self.feed.call_watchers

    def note(self, event: str, **detail: Any) -> None:
        self.feed.note(event, **detail)

    # the bot's life ----------------------------------------------------------------------------
    async def prompt(self, text: str, voice: str | None = None, flow: Flow | None = None) -> Prompt:
        flow = flow or self.flow
        return await self.tts.synth(text, voice or flow.voice, flow.rate)

    async def start(self) -> None:
        """Pre-synthesise the flow's prompts, log in and wait for calls."""
        for text in self.flow.prompts():
            await self.prompt(text)
        if self.model is not None and self.flow.needs_free_form():
            await shared_pool(self.model).ready()  # warm recognisers before the first call
        await self.pool.fill()
        if self.acceptor is not None and self.inbound:
            self.acceptor.register(self.flow.user_ids)
        log.info("flow %s answers %s", self.flow.name, self.flow.user_ids[0])

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
        if self.acceptor is not None:
            self.acceptor.unregister(self.flow.user_ids)
        self.calls.cancel_all()
        await self.pool.close()
        await self.rooms.close()

    # admission (the switch's acceptor, in the gateway's process) -------------------------------
    async def admit(self, call: SwitchCall) -> Session | None:
        assert self.acceptor is not None, "only a bot in the gateway's process admits calls"
        return await self.acceptor.admit(call)

    def released(self, session: Session) -> None:
        if self.acceptor is not None:
            self.acceptor.released(session)

    # calls -------------------------------------------------------------------------------------
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
        return await self.calls.dial(number, vars, setup)

    async def ring_out(self, flow_call: FlowCall, timeout_s: float) -> bool:
        """Wait until a dialled call is answered or over; one still ringing after
        ``timeout_s`` is hung up. True when it rang out unanswered."""
        return await self.calls.ring_out(flow_call, timeout_s)

    async def hangup(self, flow_call: FlowCall) -> None:
        await self.calls.hangup(flow_call)

    async def wait_records(self, count: int = 1, timeout_s: float = 30.0) -> deque[FlowRecord]:
        """Wait until ``count`` calls have finished (TimeoutError after ``timeout_s``); the
        records of the latest finished calls (``keep_records``), in the order they finished."""
        return await self.keeper.wait_records(count, timeout_s)

    async def finished_call(self, flow_call: FlowCall, timeout_s: float = 600) -> FlowRecord:
        """Wait until ``flow_call`` has ended; its record."""
        return await self.keeper.finished_call(flow_call, timeout_s)
