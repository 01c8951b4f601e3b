"""A media worker process: ``python -m ivrbot.endpoints.workers.worker FD FLOWS_DIR``, started by
:class:`ivrbot.endpoints.workers.pool.WorkerPool` with one end of a socket pair as FD.

It runs the same :class:`ivrbot.serve.Runner` as ``ivrbot run`` (its own gateway on a
free port of 127.0.0.1, its bots inside it, flow files watched) without campaigns or SIP,
and takes the calls the gateway relays (:class:`ivrbot.endpoints.workers.host.WorkerHost`). It stops
on SIGTERM, or when the gateway's end of the link closes (the gateway is gone).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import pickle
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path

from ivrbot.config import Settings, limit_blas_threads
from ivrbot.endpoints.workers.link import Link
from ivrbot.web.board import BOARD, Board

log = logging.getLogger("ivrbot.serve.workers")  # an operator logger (ivrbot.logs)


async def _run(fd: int, flows_dir: Path) -> int:
    from ivrbot import logs
    from ivrbot.endpoints.workers.host import WorkerHost
    from ivrbot.serve import Runner

    link = await Link.over(socket.socket(fileno=fd), "gateway")
    hello = json.loads(await link.reader.readline())
    level, fmt, verbose = hello["logs"]
    logs.configure(level, fmt, verbose)
    given: Settings = pickle.loads(base64.b64decode(hello["settings"]))
    settings = replace(given, host="127.0.0.1", port=0,  # its gateway: for its own bots only
                       sip_config="", media_workers=0)  # fmt: skip
    # the access settings' warnings (development mode ...) are the gateway's to give, once
    logging.getLogger("ivrbot.wire.app").setLevel(logging.ERROR)
    runner = Runner(flows_dir, settings, campaigns=False)
    try:
        await runner.start()
    except Exception as exc:  # said to the gateway, which names it in its own error
        link.send({"op": "failed", "error": str(exc) or type(exc).__name__})
        await link.close()
        return 1
    WorkerHost(runner.server.gateway, link)
    serves = [uid for bot in runner.bots.values() if not bot.flow.reaches_others()
              for uid in bot.flow.user_ids]  # fmt: skip
    link.send({"op": "ready", "pid": os.getpid(), "serves": serves})
    log.info("media worker %s (pid %d) serves %s", hello["index"], os.getpid(), serves)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reading = asyncio.ensure_future(link.serve())
    watcher = asyncio.ensure_future(runner.watch())
    showing = asyncio.ensure_future(_show_calls(runner.server.app[BOARD], link, hello["index"]))
    gone = asyncio.ensure_future(link.closed.wait())
    await asyncio.wait([gone, asyncio.ensure_future(stop.wait())],
                       return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    watcher.cancel()
    showing.cancel()
    await runner.stop()  # its calls end: their events go out while the link is up
    await link.close()
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reading
    return 0


async def _show_calls(board: Board, link: Link, index: int) -> None:
    """This worker's live calls (flow, step, inputs), sent to the gateway's dashboard when
    they change (at most every 0.2 s)."""
    version = 0
    while True:
        version = await board.changed_since(version)
        rows = [{**row, "call": None, "worker": index} for row in board.live_calls()]
        link.send({"op": "calls", "rows": rows})
        await asyncio.sleep(0.2)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m ivrbot.endpoints.workers.worker FD FLOWS_DIR (started by ivrbot run)",
              file=sys.stderr)  # fmt: skip
        return 2
    limit_blas_threads()
    return asyncio.run(_run(int(argv[1]), Path(argv[2])))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
