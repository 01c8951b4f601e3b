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

from ivrbot.campaign.service import campaign_service
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.admission import Admission
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.loader import check_numbers_free, flow_files, load_flow_file, load_flows_apart
from ivrbot.flow.runner import Bot
from ivrbot.gateway.access import reserve
from ivrbot.gateway.health import FLOWS
from ivrbot.gateway.server import GatewayServer, check_listen
from ivrbot.media.models import load_flow_model
from ivrbot.media.tts import Synthesizer, check_tts
from ivrbot.numbers import format_number
from ivrbot.sip.connector import SipConnector, sip_connector
from ivrbot.web import SOFTPHONE_PATH
from ivrbot.web.board import BOARD

log = logging.getLogger(__name__)


def _stamp(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)


class Runner:
    """The gateway and one bot per flow file in ``flows_dir``.

    A flow file that does not load is reported and skipped: the others are served. Hot
    reload tries it again whenever it changes (and serves new flow files the same way)."""

    def __init__(self, flows_dir: Path, settings: Settings, console: Console | None = None) -> None:
        self.flows_dir = flows_dir
        self.settings = settings
        self.console = console or Console(quiet=True)
        self.server = GatewayServer(settings)
        self.server.app[FLOWS] = self.flow_status  # for GET /health
        self.bots: dict[Path, Bot] = {}
        self.broken: dict[Path, str] = {}  # flow files that do not load, and why
        self._stamps: dict[Path, tuple[int, int]] = {}
        self._tts = Synthesizer()
        self.admission = Admission(settings.max_calls)  # every bot of this process
        self._credentials = Credentials.operator(settings.client_id, settings.client_secret)
        self.warnings: list[str] = []
        self.sip: SipConnector | None = None
        # outbound campaigns: their scheduler and HTTP API (None with a :memory: database)
        self.campaigns = campaign_service(self.server.app, settings, self._bot_named)
        self.board = self.server.app[BOARD]  # the dashboard shows these bots
        self.board.serve(lambda: list(self.bots.values()), lambda: self.broken)

    def _bot_named(self, flow_name: str) -> Bot | None:
        return next((b for b in self.bots.values() if b.flow.name == flow_name), None)

    async def start(self) -> str:
        self.warnings = self.settings.check_access()  # unsafe settings: ConfigError, first
        check_listen(self.settings.host, self.settings.port)  # a port in use: at once
        check_tts()
        flows, problems = load_flows_apart(self.flows_dir)
        if not flows:  # nothing to serve: say what to fix
            if len(problems) == 1:
                raise problems[0][1]
            raise FlowError(
                f"no flow in {self.flows_dir} loads: " + "; ".join(str(p) for _, p in problems)
            )
        for path, problem in problems:
            self._broken(path, problem)
        for flow in flows:  # reserved before anyone can reach the gateway
            self.server.gateway.access.reserve(flow.user_ids)
        if self.settings.sip_config:
            self.sip = sip_connector(self.server, self.settings)  # SipConfigError
        url = await self.server.start()
        if self.sip is not None:
            await self.sip.start()
            self.sip.on_change = self.board.poke
            self.board.show_sip(self.sip.status)
        for flow in flows:
            await self._serve(flow)
        if self.campaigns is not None:
            await self.campaigns.start()
        return url

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
        model = await load_flow_model(flow)  # one vosk.Model per folder
        pool = self.settings.virtual_numbers
        pool += [n for n in flow.numbers if n not in pool]
        # only this process's bots (and the operator's other bot processes) may use its numbers
        await reserve(self.server.gateway, flow.user_ids)
        settings, local = self.settings, self.settings.local_bots
        bot = Bot(  # local: the bot attaches inside the gateway (in-process media, admission)
            flow, self.server.url, self._tts, model, store=self.server.gateway.store,
            credentials=self._credentials, gateway=self.server.gateway if local else None,
            admission=self.admission, queue_s=settings.queue_s,
            max_calls=(flow.max_calls or settings.flow_max_calls) if local else 4,
        )  # fmt: skip
        await bot.start()
        self.board.watch(bot)
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
        if self.campaigns is not None:
            await self.campaigns.stop()
        for bot in self.bots.values():
            await bot.stop()
        if self.sip is not None:
            await self.sip.stop()
        await self.server.stop()
        await self._tts.close()

    def banner(self) -> None:
        for warning in self.warnings:
            self.console.print(f"[bold red]WARNING:[/] {warning}")
        self.console.print(f"ivrbot gateway on [bold]{self.server.url}[/]  (Ctrl-C stops)")
        self.console.print(f"  softphone: [bold]{self.server.url}{SOFTPHONE_PATH}[/]")
        self.console.print(f"  dashboard: [bold]{self.server.url}/dashboard[/]")
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
        log.info("stopping: ending calls, closing sessions")
    finally:
        if watcher is not None:
            watcher.cancel()
        await runner.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
