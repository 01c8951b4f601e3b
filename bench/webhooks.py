"""Webhook delivery (ivrbot.integrations.delivery): what sending costs the process that runs
the calls, and how soon an event reaches a receiver.

A receiver (aiohttp, in a process of its own on 127.0.0.1) takes signed events; the sender
queues EVENTS events spread over CALLS calls (each call's in order) as fast as it can, then
one at a time (the next once the last was taken). The table: the time ``send()`` takes (what a call waits: it only queues), the sender's CPU per
event delivered (this process, receiver excluded), events per second, and the latency from
``send()`` to the receiver's answer (p50 / p99), median of the runs.

    .venv/bin/python bench/webhooks.py [--events 2000] [--calls 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from typing import Any

from aiohttp import web

from ivrbot.integrations.delivery import WebhookSender


def receive(port: multiprocessing.Queue[int]) -> None:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


async def one_run(url: str, events: int, calls: int, paced: bool) -> dict[str, float]:
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    sender = WebhookSender("whsec-bench-0123456789", tries=3, backoff_s=0.5)
    http_post = sender._http_post

    async def timed(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        status = await http_post(url, body, headers, timeout)
        n = int(body[body.index(b'"n":') + 4 : body.index(b"}", body.index(b'"n":'))])
        latencies.append(time.perf_counter() - sent_at[n])
        return status

    sender._post = timed
    queue_s = 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n in range(events):
        payload: dict[str, Any] = {"type": "call.step", "call": {"id": f"c{n % calls}"}, "n": n}
        sent_at[n] = t = time.perf_counter()
        sender.send(url, f"call:c{n % calls}", payload)
        queue_s += time.perf_counter() - t
        if paced:  # one event at a time: the latency of a lone event
            while len(latencies) <= n:
                await asyncio.sleep(0.001)
        elif n % calls == calls - 1:
            await asyncio.sleep(0)  # calls run on the same loop: let the sender go on
    await sender.idle()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await sender.close()
    assert sender.delivered == events, sender.status()
    latencies.sort()
    return {
        "send_us": queue_s / events * 1e6,
        "cpu_ms": cpu / events * 1e3,
        "rate": events / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


async def main(events: int, calls: int, runs: int) -> None:
    port: multiprocessing.Queue[int] = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=receive, args=(port,), daemon=True)
    receiver.start()
    url = f"http://127.0.0.1:{port.get(timeout=10)}/hook"
    print(f"{events} events over {calls} calls, median of {runs} runs")
    print("| | send() per event | sender CPU per event | events/s | latency p50 | latency p99 |")
    print("|---|---:|---:|---:|---:|---:|")
    try:
        for label, paced in (("all queued at once", False), ("one at a time", True)):
            results = [await one_run(url, events, calls, paced) for _ in range(runs)]
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(f"| {label} | {med['send_us']:.1f} us | {med['cpu_ms']:.2f} ms | "
                  f"{med['rate']:.0f} | {med['p50_ms']:.1f} ms | {med['p99_ms']:.1f} ms |")  # fmt: skip
    finally:
        receiver.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.calls, args.runs))
