"""A bot: a Phone logged in as a flow's number, answering calls and running the flow."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

import vosk

from ivrbot.events import Event
from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.record import CallRecord
from ivrbot.media.listener import Listener
from ivrbot.media.tts import Prompt, Synthesizer
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.store.base import Store
from ivrbot.timeline import Timeline

log = logging.getLogger(__name__)


class Bot:
    """Runs one flow: logs in as its number, answers, runs the steps per call."""

    def __init__(
        self,
        flow: Flow,
        gateway_url: str,
        tts: Synthesizer,
        model: vosk.Model | None = None,
        timeline: Timeline | None = None,
        store: Store | None = None,
    ) -> None:
        self.flow = flow
        self.gateway_url = gateway_url
        self.tts = tts
        self.model = model
        self.timeline = timeline
        self.store = store  # where call records go (None: kept in memory only)
        self.phone = Phone(gateway_url, name=f"bot:{flow.name}")
        self.records: list[CallRecord] = []
        self.finished: list[FlowCall] = []
        self._calls: dict[int, tuple[FlowCall, asyncio.Task[None] | None]] = {}
        self._dispatched: set[Event] = set()

    def note(self, event: str, **detail: Any) -> None:
        if self.timeline is not None:
            self.timeline.add("bot", event, **detail)

    async def prompt(self, text: str, voice: str | None = None, flow: Flow | None = None) -> Prompt:
        flow = flow or self.flow
        return await self.tts.synth(text, voice or flow.voice, flow.rate)

    async def start(self) -> None:
        """Pre-synthesise the flow's prompts, log in and wait for calls."""
        for text in self.flow.prompts():
            await self.prompt(text)
        phone = self.phone
        phone.on("call:incoming", self._on_incoming)
        phone.on("call:connected", self._on_connected)
        phone.on("call:disconnected", self._on_ended)
        phone.on("call:canceled", self._on_ended)
        phone.on("dtmf:tone-received", self._on_dtmf)
        self._subscribe_flow_handlers()
        token = await fetch_token(self.gateway_url, "VIRTUAL_NUMBER")
        await phone.login(token=token, user_id=self.flow.user_ids[0])
        log.info("flow %s answers %s", self.flow.name, self.flow.user_ids[0])

    def _subscribe_flow_handlers(self) -> None:
        """One dispatcher per event the flow handles; it calls the current flow's handlers."""
        for event in self.flow.handlers:
            if event not in self._dispatched:
                self._dispatched.add(event)
                self.phone.on(event, functools.partial(self._dispatch, event))

    async def _dispatch(self, event: Event, payload: Any) -> None:
        for handler in list(self.flow.handlers.get(event, [])):
            result = handler(payload)
            if asyncio.iscoroutine(result):
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
        self._subscribe_flow_handlers()
        log.info("flow %s reloaded from %s", flow.name, flow.source)

    async def stop(self) -> None:
        for _, task in list(self._calls.values()):
            if task is not None:
                task.cancel()
        await self.phone.close()

    async def _on_incoming(self, payload: dict[str, Any]) -> None:
        self.note(Event.CALL_INCOMING, caller=payload["from"])
        if self.flow.auto_answer:
            listener = Listener()
            call = await self.phone.answer(remote_media=listener.on_frame)
            self._calls[call.index] = (FlowCall(self, call, listener), None)

    def _on_connected(self, data: Any) -> None:
        self.note(Event.CALL_CONNECTED)
        entry = self._calls.get(data.index)
        if entry is not None and entry[1] is None:
            flow_call = entry[0]
            self._calls[data.index] = (flow_call, asyncio.ensure_future(flow_call.run()))

    def _on_dtmf(self, data: Any) -> None:
        entry = self._calls.get(data.index)
        if entry is not None:
            entry[0].listener.press(data.get("tone"), data.get("method", "rfc4733"))

    async def _on_ended(self, data: Any) -> None:
        entry = self._calls.pop(data.index, None)
        if entry is None:
            return
        flow_call, task = entry
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if not flow_call.record.outcome:
            flow_call.record.outcome = "caller-hangup"
        self.records.append(flow_call.record)
        self.finished.append(flow_call)
        if self.store is not None:
            try:
                await self.store.add_flow_call(flow_call.record.to_dict())
            except Exception:
                log.exception("could not store the record of a %s call", self.flow.name)
        self.note(Event.CALL_DISCONNECTED, outcome=flow_call.record.outcome)

    async def hangup(self, flow_call: FlowCall) -> None:
        call: Call = flow_call.call
        if call is self.phone.current_call:
            await self.phone.hangup()
