"""Answering-machine detection for a dialled call: what the callee says first tells a person
from a machine (``call.vars['answered_by']``, the whole result in ``call.vars['amd']``); on a
machine, its beep is waited for (``call.vars['beep']``), then the flow runs."""

from __future__ import annotations

import asyncio

import numpy as np

from ivrbot.clock import Clock
from ivrbot.flow.call import FlowCall
from ivrbot.flow.deadline import within
from ivrbot.media.amd import AmdResult, AnsweringMachineDetector, BeepDetector
from ivrbot.media.frames import LISTEN_RATE

BEEP_WAIT_S = 20.0  # after a machine greeting, how long to wait for its beep


async def detect_then_run(flow_call: FlowCall, clock: Clock) -> None:
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
            result = await within(clock, decided, budget)
        except TimeoutError:
            result = amd.finish()
        flow_call.vars["amd"] = result
        flow_call.vars["answered_by"] = result.verdict
        flow_call.bot.note("answered by", verdict=result.verdict, cause=result.cause)
        if result.verdict == "machine":
            try:
                flow_call.vars["beep"] = await within(clock, beeped, BEEP_WAIT_S)
            except TimeoutError:
                flow_call.vars["beep"] = False
            flow_call.bot.note("beep", heard=flow_call.vars["beep"])
    finally:
        flow_call.listener.taps.remove(tap)
    await flow_call.run()
