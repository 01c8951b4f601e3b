"""A bot: a Phone logged in as a flow's number, answering calls and running the flow."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import vosk

from ivrbot.events import Event
from ivrbot.flow.call import FlowCall
from ivrbot.flow.flow import Flow
from ivrbot.flow.record import CallRecord
from ivrbot.media.listener import Listener
from ivrbot.media.tts import Prompt, Synthesizer
from ivrbot.phone.call import Call
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
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
    ) -> None:
        self.flow = flow
        self.gateway_url = gateway_url
        self.tts = tts
        self.model = model
        self.timeline = timeline
        self.phone = Phone(gateway_url, name=f"bot:{flow.name}")
        self.records: list[CallRecord] = []
        self.finished: list[FlowCall] = []
        self._calls: dict[int, tuple[FlowCall, asyncio.Task[None] | None]] = {}

    def note(self, event: str, **detail: Any) -> None:
        if self.timeline is not None:
            self.timeline.add("bot", event, **detail)

    async def prompt(self, text: str, voice: str | None = None) -> Prompt:
        return await self.tts.synth(text, voice or self.flow.voice, self.flow.rate)

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
        for event, handlers in self.flow.handlers.items():
            for handler in handlers:
                phone.on(event, handler)
        token = await fetch_token(self.gateway_url, "VIRTUAL_NUMBER")
        await phone.login(token=token, user_id=self.flow.user_ids[0])
        log.info("flow %s answers %s", self.flow.name, self.flow.user_ids[0])

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
        self.note(Event.CALL_DISCONNECTED, outcome=flow_call.record.outcome)

    async def hangup(self, flow_call: FlowCall) -> None:
        call: Call = flow_call.call
        if call is self.phone.current_call:
            await self.phone.hangup()
