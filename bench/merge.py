"""Merging calls into a conference (the Conference step's gateway operation), over real media.

A gateway on 127.0.0.1, a host Phone (a session of bob) with a conference that plays a
600 Hz tone, an agent Phone (another session of bob) that answers calls, and callers
that each dial bob and are merged into the conference one after another (up to MEMBERS
in the room). Per merge it measures:

- request: ``Phone.merge_call`` until the gateway's 204 (the re-bridging);
- first audio: from the request until the caller's received audio carries the host's
  tone (Goertzel, a 20 ms frame above -35 dBFS at 600 Hz): what a caller waits to hear
  the room; compared with the same wait after a resume in a plain call (the agent's tone
  again after hold: the other re-bridging the gateway does).

Run: .venv/bin/python bench/merge.py
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av
import numpy as np

from ivrbot.config import Settings
from ivrbot.media.frames import WIRE_RATE, pcm_from_frame
from ivrbot.phone.phone import Phone
from ivrbot.phone.transport_remote import fetch_token
from ivrbot.testing.audio import sine, tone_dbfs
from ivrbot.wire.server import GatewayServer

MEMBERS = 6  # callers merged into the room, one after another
HOST_HZ, AGENT_HZ = 600.0, 1400.0
HEARD_DB = -35.0


class Ear:
    """Received audio; when a frequency was first heard after a mark."""

    def __init__(self) -> None:
        self.frames: list[tuple[float, np.ndarray]] = []

    def __call__(self, frame: av.AudioFrame) -> None:
        self.frames.append((time.perf_counter(), pcm_from_frame(frame)))

    async def first(self, freq: float, since: float, timeout: float = 10.0) -> float:
        seen = 0
        async with asyncio.timeout(timeout):
            while True:
                for t, pcm in self.frames[seen:]:
                    if t >= since and tone_dbfs(pcm, freq) > HEARD_DB:
                        return t - since
                seen = len(self.frames)
                await asyncio.sleep(0.005)


async def phone(url: str, user: str) -> Phone:
    p = Phone(url, name=user)
    await p.login(token=await fetch_token(url, "ACCOUNT_ID"), user_id=user)
    return p


async def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    server = GatewayServer(Settings(port=0, db=":memory:"))
    url = await server.start()
    host, agent = await phone(url, "bob@ivrbot.local"), await phone(url, "bob@ivrbot.local")
    conf = await host.start_conference()
    while conf.state.value != "connected":
        await asyncio.sleep(0.02)
    conf.play(sine(HOST_HZ, 60.0, rate=WIRE_RATE), WIRE_RATE)
    rang = asyncio.Event()
    agent.on("call:incoming", lambda _: rang.set())
    host.on("call:incoming", lambda _: asyncio.ensure_future(host.reject()))
    requests, first_room, first_call = [], [], []
    callers = []
    for i in range(MEMBERS):
        caller, ear = await phone(url, f"caller{i}@ivrbot.local"), Ear()
        callers.append(caller)
        rang.clear()
        call = await caller.dial("bob@ivrbot.local", remote_media=ear)
        await rang.wait()
        leg = await agent.answer()
        leg.play(sine(AGENT_HZ, 60.0, rate=WIRE_RATE), WIRE_RATE)
        while call.state.value != "connected":
            await asyncio.sleep(0.01)
        await ear.first(AGENT_HZ, time.perf_counter())
        await agent.hold()  # the same re-bridging in a plain call, for comparison
        await asyncio.sleep(0.3)
        resumed = time.perf_counter()
        await agent.resume()
        first_call.append(await ear.first(AGENT_HZ, resumed))
        began = time.perf_counter()
        await agent.merge_call(conf.id)
        requests.append(time.perf_counter() - began)
        first_room.append(await ear.first(HOST_HZ, began))
        while agent.calls:
            await asyncio.sleep(0.01)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:8.1f} {min(values) * 1000:8.1f} {max(values) * 1000:8.1f}"

    print(f"Merging {MEMBERS} calls into one conference, one after another (ms)\n")
    header = f"{'':38} {'median':>8} {'min':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    print(f"{'merge request (until 204)':38} {ms(requests)}")
    print(f"{'merge -> caller hears the room':38} {ms(first_room)}")
    print(f"{'resume -> caller hears the agent':38} {ms(first_call)}")
    ratio = statistics.median(first_room) / statistics.median(first_call)
    print(f"\nratio (hears the room after a merge / the agent after a resume): {ratio:.2f}")
    for p in (*callers, agent, host):
        await p.close()
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
