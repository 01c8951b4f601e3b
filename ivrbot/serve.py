"""``ivrbot run``: the gateway and a bot per flow, in one process, until interrupted."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from rich.console import Console

from ivrbot.config import Settings
from ivrbot.flow.loader import load_flows
from ivrbot.flow.runner import Bot
from ivrbot.gateway.server import GatewayServer
from ivrbot.media.models import load_flow_model
from ivrbot.media.tts import Synthesizer, check_tts
from ivrbot.numbers import format_number


async def serve(
    flows_dir: Path,
    host: str | None,
    port: int | None,
    console: Console,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    check_tts()
    flows = load_flows(flows_dir)  # a speech flow whose model is missing fails here
    settings = Settings()
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    for flow in flows:
        settings.virtual_numbers += [n for n in flow.numbers if n not in settings.virtual_numbers]
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = GatewayServer(settings)
    bots: list[Bot] = []
    async with Synthesizer() as tts:
        # Each flow gets the model its language/model names; one vosk.Model per folder.
        models = [await load_flow_model(flow) for flow in flows]
        url = await server.start()
        try:
            for flow, model in zip(flows, models, strict=True):
                bot = Bot(flow, url, tts, model, store=server.gateway.store)
                await bot.start()
                bots.append(bot)
            console.print(f"ivrbot gateway on [bold]{url}[/]  (Ctrl-C stops)")
            for flow in flows:
                numbers = ", ".join(format_number("1" + n) for n in flow.numbers)
                console.print(f"  flow [bold]{flow.name}[/] answers {numbers}  ({flow.source})")
            if ready is not None:
                ready.set()
            await stop.wait()
            console.print("stopping: ending calls, closing sessions")
        finally:
            for bot in bots:
                await bot.stop()
            await server.stop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
