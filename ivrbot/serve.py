"""``ivrbot run``: the gateway and a bot per flow, in one process, until interrupted.

Flow files are watched: a changed file is loaded again and its bot takes the new version
for new calls, while calls in progress finish on the version they began with. A file
that no longer loads is reported and the running version stays.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from rich.console import Console

from ivrbot.config import Settings
from ivrbot.flow.flow import FlowError
from ivrbot.flow.loader import flow_files, load_flow_file, load_flows
from ivrbot.flow.runner import Bot
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.models import load_flow_model
from ivrbot.media.tts import Synthesizer, check_tts
from ivrbot.numbers import format_number
from ivrbot.web import SOFTPHONE_PATH

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


class Runner:
    """The gateway and one bot per flow file in ``flows_dir``."""

    def __init__(self, flows_dir: Path, settings: Settings, console: Console | None = None) -> None:
        self.flows_dir = flows_dir
        self.settings = settings
        self.console = console or Console(quiet=True)
        self.server = GatewayServer(settings)
        self.bots: dict[Path, Bot] = {}
        self._stamps: dict[Path, tuple[int, int]] = {}
        self._tts = Synthesizer()

    async def start(self) -> str:
        check_tts()
        flows = load_flows(self.flows_dir)  # a speech flow whose model is missing fails here
        for flow in flows:
            pool = self.settings.virtual_numbers
            pool += [n for n in flow.numbers if n not in pool]
        models = [await load_flow_model(flow) for flow in flows]  # one vosk.Model per folder
        url = await self.server.start()
        for flow, model in zip(flows, models, strict=True):
            path = Path(flow.source)
            bot = Bot(flow, url, self._tts, model, store=self.server.gateway.store)
            await bot.start()
            self.bots[path] = bot
            self._stamps[path] = _stamp(path)
        return url

    async def reload_changed(self) -> list[str]:
        """Load again every flow file that changed since it was loaded; returns their names."""
        reloaded = []
        for path, bot in self.bots.items():
            stamp = _stamp(path)
            if stamp == self._stamps[path]:
                continue
            self._stamps[path] = stamp
            try:
                flow = load_flow_file(path)
                await bot.reload(flow)
            except FlowError as exc:
                self.console.print(f"[red]not reloaded:[/] {exc}")
                continue
            self.console.print(f"reloaded flow [bold]{flow.name}[/] from {path}")
            reloaded.append(flow.name)
        for path in flow_files(self.flows_dir):
            if path not in self.bots and path not in self._stamps:
                self._stamps[path] = _stamp(path)
                self.console.print(f"new flow file {path}: restart ivrbot run to serve it")
        return reloaded

    async def watch(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload_changed()
            except Exception:
                log.exception("reloading flows failed")

    async def stop(self) -> None:
        for bot in self.bots.values():
            await bot.stop()
        await self.server.stop()
        await self._tts.close()

    def banner(self) -> None:
        self.console.print(f"ivrbot gateway on [bold]{self.server.url}[/]  (Ctrl-C stops)")
        self.console.print(f"  softphone: [bold]{self.server.url}{SOFTPHONE_PATH}[/]")
        for bot in self.bots.values():
            flow = bot.flow
            numbers = ", ".join(format_number("1" + n) for n in flow.numbers)
            self.console.print(f"  flow [bold]{flow.name}[/] answers {numbers}  ({flow.source})")


async def serve(
    flows_dir: Path,
    host: str | None,
    port: int | None,
    console: Console,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    settings = Settings()
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = Runner(flows_dir, settings, console)
    watcher: asyncio.Task[None] | None = None
    try:
        await runner.start()
        runner.banner()
        if ready is not None:
            ready.set()
        watcher = asyncio.ensure_future(runner.watch())
        await stop.wait()
        console.print("stopping: ending calls, closing sessions")
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
