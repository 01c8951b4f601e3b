"""``ivrbot run``: the gateway and a bot per flow, in one process, until interrupted.

Flow files are watched: a changed file is loaded again and its bot takes the new version
for new calls, while calls in progress finish on the version they began with. A file
that no longer loads is reported and the running version stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from ivrbot.compose import Parts, assemble
from ivrbot.config import Settings
from ivrbot.credentials import dashboard_login, leaving_development
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.loader import check_numbers_free, flow_files, load_flow_file, load_flows_apart
from ivrbot.flow.runner import Bot
from ivrbot.numbers import format_number
from ivrbot.process_setup import configure_media
from ivrbot.speech.tts import check_tts
from ivrbot.web import SOFTPHONE_PATH
from ivrbot.web.board import BOARD
from ivrbot.wire.health import FLOWS
from ivrbot.wire.server import GatewayServer, check_listen

if TYPE_CHECKING:
    from ivrbot.campaign.scheduler import CampaignService
    from ivrbot.endpoints.sip.connector import SipConnector
    from ivrbot.endpoints.workers.pool import WorkerPool

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


class Runner:
    """The gateway and one bot per flow file in ``flows_dir``, assembled by
    :func:`ivrbot.compose.assemble` (with the campaign service, and SIP when configured).

    A flow file that does not load is reported and skipped: the others are served. Hot
    reload tries it again whenever it changes (and serves new flow files the same way)."""

    def __init__(
        self,
        flows_dir: Path,
        settings: Settings,
        console: Console | None = None,
        campaigns: bool = True,
    ) -> None:
        self.flows_dir = flows_dir
        self.settings = settings
        self.with_campaigns = campaigns  # a media worker's runner has none
        self.workers: WorkerPool | None = None  # settings.media_workers > 0
        self.console = console or Console(quiet=True)
        self.bots: dict[Path, Bot] = {}
        self.broken: dict[Path, str] = {}  # flow files that do not load, and why
        self._stamps: dict[Path, tuple[int, int]] = {}
        self.warnings: list[str] = []
        self._stack = contextlib.AsyncExitStack()
        self._parts: Parts | None = None

    @property
    def parts(self) -> Parts:
        if self._parts is None:
            raise RuntimeError("the runner has not started")
        return self._parts

    @property
    def server(self) -> GatewayServer:
        assert self.parts.server is not None
        return self.parts.server

    @property
    def sip(self) -> SipConnector | None:
        return self.parts.sip

    @property
    def campaigns(self) -> CampaignService | None:
        return self.parts.campaigns

    def _prepare(self, parts: Parts) -> None:
        """Before the gateway listens: /health and the dashboard show these flows and bots."""
        assert parts.server is not None
        parts.server.app[FLOWS] = self.flow_status  # for GET /health
        parts.server.app[BOARD].serve(lambda: list(self.bots.values()), lambda: self.broken)

    async def start(self) -> str:
        self.warnings = self.settings.check_access()  # unsafe settings: ConfigError, first
        check_listen(self.settings.host, self.settings.port)  # a port in use: at once
        check_tts()
        configure_media(self.settings)  # the speech model the flows are checked against
        flows, problems = load_flows_apart(self.flows_dir)
        if not flows:  # nothing to serve: say what to fix
            if len(problems) == 1:
                raise problems[0][1]
            raise FlowError(
                f"no flow in {self.flows_dir} loads: " + "; ".join(str(p) for _, p in problems)
            )
        for path, problem in problems:
            self._broken(path, problem)
        try:
            self._parts = await self._stack.enter_async_context(
                assemble(
                    self.settings,
                    reserved=flows,
                    campaigns=self.with_campaigns,
                    prepare=self._prepare,
                )
            )
            for flow in flows:
                await self._serve(flow)
            await self.parts.start_campaigns()  # once their bots are served
            if self.settings.media_workers:
                await self._start_workers()
        except BaseException:
            await self.stop()
            raise
        return self.parts.url

    async def _start_workers(self) -> None:
        """Media workers beside the gateway (ivrbot/workers); they stop first."""
        from ivrbot import logs
        from ivrbot.endpoints.workers.pool import WorkerPool

        pool = WorkerPool(self.server.gateway, self.settings, self.flows_dir,
                          self.settings.media_workers, logs.configured())  # fmt: skip
        await pool.start()
        board = self.server.app[BOARD]  # the dashboard shows the workers' calls too
        board.elsewhere, pool.on_change = pool.live_calls, board.poke
        self.workers = pool
        self._stack.push_async_callback(pool.stop)

    def flow_status(self) -> dict[str, list[str]]:
        """The flows served (by name) and the flow files that do not load."""
        return {
            "loaded": sorted(bot.flow.name for bot in self.bots.values()),
            "broken": sorted(str(path) for path in self.broken),
        }

    def _broken(self, path: Path, problem: FlowError) -> None:
        self.broken[path] = str(problem)
        self._stamps[path] = _stamp(path)
        log.error("flow file not served: %s", problem)

    async def _serve(self, flow: Flow) -> None:
        """Start a bot for ``flow`` (its speech model loaded, its numbers in the pool)."""
        path = Path(flow.source)
        bot = await self.parts.serve(flow)
        self.server.app[BOARD].watch(bot)
        self.bots[path] = bot
        self.broken.pop(path, None)
        self._stamps[path] = _stamp(path)

    async def reload_changed(self) -> list[str]:
        """Load again every flow file that changed since it was loaded, and try the files
        that did not load (or are new); returns the names of the flows (re)loaded."""
        reloaded = []
        for path in flow_files(self.flows_dir):
            stamp = _stamp(path)
            if stamp == self._stamps.get(path):
                continue
            self._stamps[path] = stamp
            bot = self.bots.get(path)
            try:
                flow = load_flow_file(path)
                check_numbers_free(flow, [b.flow for p, b in self.bots.items() if p != path])
                if bot is not None:
                    await bot.reload(flow)
                else:
                    await self._serve(flow)
            except FlowError as exc:
                if bot is None:
                    self._broken(path, exc)
                else:
                    log.error("flow file not reloaded (the running version stays): %s", exc)
                continue
            verb = "reloaded" if bot is not None else "now serving"
            log.info("%s flow %s from %s", verb, flow.name, path)
            reloaded.append(flow.name)
        return reloaded

    async def watch(self, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.reload_changed()
            except Exception:
                log.exception("reloading flows failed")

    async def stop(self) -> None:
        """Campaigns, bots, SIP, the gateway and the synthesiser stop, in that order."""
        await self._stack.aclose()

    def banner(self) -> None:
        for warning in self.warnings:
            self.console.print(f"[bold red]WARNING:[/] {warning}")
        self.console.print(f"ivrbot gateway on [bold]{self.server.url}[/]  (Ctrl-C stops)")
        self.console.print(f"  softphone: [bold]{self.server.url}{SOFTPHONE_PATH}[/]")
        self.console.print(f"  dashboard: [bold]{self.server.url}/dashboard[/]")
        # whole lines (a terminal wraps them): the id and secret stay copyable
        self.console.print(f"    {dashboard_login(self.settings)}", highlight=False, soft_wrap=True)
        self.console.print(
            f"  access: {leaving_development(self.settings)}", highlight=False, soft_wrap=True
        )
        if self.workers is not None:
            pids = ", ".join(str(w.pid) for w in self.workers.workers)
            self.console.print(
                f"  media workers: [bold]{len(self.workers.workers)}[/] (pids {pids})"
            )
        if self.sip is not None:
            ports = ", ".join(f"{k} {v}" for k, v in self.sip.stack.ports.items())
            self.console.print(f"  SIP: [bold]{self.sip.settings.host}: {ports}[/]")
        for bot in self.bots.values():
            flow = bot.flow
            numbers = ", ".join(format_number("1" + n) for n in flow.numbers)
            self.console.print(f"  flow [bold]{flow.name}[/] answers {numbers}  ({flow.source})")
        for path in self.broken:
            self.console.print(
                f"  [red]not served:[/] {path} (fix it: it is loaded when it changes)"
            )


async def serve(
    flows_dir: Path,
    host: str | None,
    port: int | None,
    console: Console,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    workers: int | None = None,
) -> None:
    settings = Settings()
    settings = replace(
        settings,
        host=host or settings.host,
        port=settings.port if port is None else port,
        media_workers=settings.media_workers if workers is None else workers,
    )
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
        log.info("stopping: ending calls, closing sessions")
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
