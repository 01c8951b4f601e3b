"""The ``ivrbot`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ivrbot import __version__
from ivrbot.flow.flow import FlowError
from ivrbot.media.asr import ModelNotFound
from ivrbot.media.tts import TtsUnavailable

console = Console()
USER_ERRORS = (FlowError, ModelNotFound, TtsUnavailable, OSError)


def _fail(exc: BaseException) -> None:
    """One line naming what to fix; no traceback."""
    click.echo(f"ivrbot: error: {exc}", err=True)
    sys.exit(1)


@click.group()
@click.version_option(__version__, prog_name="ivrbot")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ivrbot: voice bots, IVR menus and outbound campaigns, with their own WebRTC gateway."""
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        for noisy in ("aioice", "aiortc"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _print_timeline(result: dict[str, Any]) -> None:
    table = Table(title="ivrbot demo: a caller rings the welcome flow", title_justify="left")
    for column, justify in (
        ("t (ms)", "right"),
        ("party", "left"),
        ("event", "left"),
        ("details", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in result["events"]:
        details = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("t_ms", "party", "event"))
        table.add_row(str(e["t_ms"]), e["party"], e["event"], details)
    console.print(table)
    console.print(f"digits received by the bot: [bold]{result['digits'] or '-'}[/]")
    console.print(
        f"speech recognised by the bot: [bold]{result['speech'] or '-'}[/] {result['choices']}"
    )
    for problem in result["problems"]:
        console.print(f"[red]problem:[/] {problem}")
    colour = "green" if result["result"] == "completed" else "red"
    console.print(f"result: [bold {colour}]{result['result']}[/]")


@main.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of the timeline."
)
@click.option(
    "--flow",
    "flow_path",
    type=click.Path(path_type=Path),
    default=Path("flows/welcome.py"),
    show_default=True,
    help="The flow module to call.",
)
@click.option("--press", default="7", show_default=True, help="Digit the caller presses.")
@click.option(
    "--say",
    default="메뉴",
    show_default=True,
    help="Word the caller speaks (Korean model: 메뉴, 예약, 아니요).",
)
def demo(as_json: bool, flow_path: Path, press: str, say: str) -> None:
    """Run gateway, bot and a simulated caller in one process, and show what happened."""
    from ivrbot.demo import run_demo

    try:
        result = asyncio.run(run_demo(flow_path, press, say)).to_dict()
    except USER_ERRORS as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        _print_timeline(result)
    sys.exit(0 if result["result"] == "completed" else 1)


@main.command()
@click.argument("flows_dir", type=click.Path(path_type=Path), default=Path("flows"))
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1, IVRBOT_HOST).")
@click.option(
    "--port", default=None, type=int, help="Port to listen on (default 8890, IVRBOT_PORT)."
)
def run(flows_dir: Path, host: str | None, port: int | None) -> None:
    """Serve the gateway and a bot for every flow in FLOWS_DIR until interrupted."""
    from ivrbot.serve import serve

    try:
        asyncio.run(serve(flows_dir, host, port, console))
    except USER_ERRORS as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass
