"""The ``ivrbot`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table

from ivrbot import __version__, logs
from ivrbot.cli.calls import calls
from ivrbot.cli.campaign import campaign
from ivrbot.cli.dial import api_key_option, dial
from ivrbot.cli.flows import flows
from ivrbot.cli.models import models
from ivrbot.cli.sip import sip
from ivrbot.config import ConfigError, Settings
from ivrbot.credentials import refused
from ivrbot.errors import UserError
from ivrbot.numbers import shown
from ivrbot.phone.transport import TokensRefused
from ivrbot.process_setup import configure_media

console = Console()
# mistakes a user can fix (FlowError, ConfigError, ModelNotFound, TtsUnavailable, ...) and
# files that cannot be read or written: one line, no traceback
USER_ERRORS = (UserError, OSError)


def _fail(exc: BaseException) -> NoReturn:
    """One line naming what to fix; no traceback."""
    click.echo(f"ivrbot: error: {_describe(exc)}", err=True)
    sys.exit(1)


def _describe(exc: BaseException) -> str:
    """``exc`` as one line; a file error names the file (and a missing folder)."""
    if not isinstance(exc, OSError) or not exc.filename or not exc.strerror:
        return str(exc)
    path = Path(str(exc.filename))
    if isinstance(exc, FileNotFoundError) and not path.parent.exists():
        return f"{path}: the folder {path.parent} does not exist"
    return f"{path}: {exc.strerror.lower()}"


class _Main(click.Group):
    """Any command: a user error (a bad setting, a file that cannot be written ...) is one
    line and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            _fail(exc)
        except TokensRefused as exc:  # the gateway answered: say what it wants
            _fail(UserError(refused(exc.status, exc.reason, exc.presented)))


def _log_options(command: Any) -> Any:
    """--log-level and --log-format (on ``ivrbot`` itself and on the commands that serve)."""
    level = click.option(
        "--log-level",
        type=click.Choice(logs.LEVELS, case_sensitive=False),
        default=None,
        help="Operator log lines (call events, flows served) at this level and above "
        "(default: info for run, warning for the other commands; IVRBOT_LOG_LEVEL).",
    )
    fmt = click.option(
        "--log-format",
        type=click.Choice(logs.FORMATS),
        default=None,
        help="text (default): one timestamped line per event; json: one JSON object per "
        "line (IVRBOT_LOG_FORMAT).",
    )
    return level(fmt(command))


@click.group(cls=_Main)
@click.version_option(__version__, prog_name="ivrbot")
@click.option(
    "-v", "--verbose", count=True, help="Internal detail too (-v info, -vv debug with ICE/RTP)."
)
@_log_options
@click.pass_context
def main(ctx: click.Context, verbose: int, log_level: str | None, log_format: str | None) -> None:
    """ivrbot: voice bots, IVR menus and outbound campaigns, with their own WebRTC gateway."""
    settings = Settings()  # ConfigError (one line naming the variable) for a bad value
    level = log_level or settings.log_level or None
    fmt = log_format or settings.log_format or "text"
    for name, value, allowed in (("LEVEL", level, logs.LEVELS), ("FORMAT", fmt, logs.FORMATS)):
        if value is not None and value not in allowed:
            raise ConfigError(f"IVRBOT_LOG_{name}={value!r} is not valid: use {', '.join(allowed)}")
    ctx.obj = {"log_level": level, "log_format": fmt, "verbose": verbose}
    logs.configure(level or "warning", fmt, verbose)
    configure_media(settings)  # the speech model (flows check, models), ICE addresses


def _serving_logs(ctx: click.Context, log_level: str | None, log_format: str | None) -> None:
    """A serving command logs call events by default: operator lines at info."""
    top = ctx.find_root().obj or {}
    level = log_level or top.get("log_level") or "info"
    logs.configure(level, log_format or top.get("log_format", "text"), top.get("verbose", 0))


PARTIES = ("caller", "callee", "from", "to", "peer", "number", "destination")  # numbers shown


def _timeline_table(title: str, events: list[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("t (ms)", "right"),
        ("party", "left"),
        ("event", "left"),
        ("details", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for e in events:
        details = ", ".join(
            f"{k}={shown(str(v)) if k in PARTIES else v}"
            for k, v in e.items()
            if k not in ("t_ms", "party", "event")
        )
        table.add_row(str(e["t_ms"]), e["party"], e["event"], details)
    return table


def _print_heard(heard: list[dict[str, Any]]) -> None:
    """The prompts the caller heard: length and, when the flow's record tells, the text."""
    if not heard:
        console.print("prompts heard: [bold]-[/]")
        return
    console.print("prompts heard:")
    for prompt in heard:
        text = prompt["text"] or "(text unknown: the flow's record is not in this IVRBOT_DB)"
        console.print(f"  {prompt['seconds']:5.1f} s  {text}", highlight=False)


def _print_timeline(result: dict[str, Any]) -> None:
    console.print(_timeline_table("ivrbot demo: a caller rings the welcome flow", result["events"]))
    _print_heard(result["heard_prompts"])
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
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Port to listen on (default 8890, IVRBOT_PORT).",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(0, 64),
    help="Media worker processes (default 0: calls in this process; IVRBOT_MEDIA_WORKERS). "
    "Use the number of cores to spread calls over all of them.",
)
@_log_options
@click.pass_context
def run(
    ctx: click.Context,
    flows_dir: Path,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Serve the gateway and a bot for every flow in FLOWS_DIR until interrupted.

    The bots attach inside the gateway and take every caller up to their limits
    (IVRBOT_MAX_CALLS, IVRBOT_FLOW_MAX_CALLS; then a queue with ringback, then busy). Also
    serves the softphone page (/softphone) and the operator's dashboard (/ and /dashboard:
    log in with IVRBOT_CLIENT_ID and IVRBOT_CLIENT_SECRET; the banner prints the development
    ones, and what leaving development mode takes). Edited flow files are loaded
    again for new calls (calls in progress finish on the old version); a flow file that does
    not load is reported and the others are served. Runs the outbound campaigns (ivrbot
    campaign start; IVRBOT_CAMPAIGN_CLOCK for a faster campaign clock). With
    IVRBOT_SIP_CONFIG (a TOML file of SIP trunks and accounts) it also answers and places SIP
    calls (ivrbot sip).

    With --workers N, N media worker processes take the WebRTC callers' calls to the flows
    (each call's media and bot in one worker, the least busy; signalling stays here); a
    worker that stops ends its calls with a record and starts again. Flows with Transfer,
    Move or Conference steps, SIP and campaign calls stay in this process.

    Logs one timestamped line per call event on stderr (call in, flow, step, input,
    transfer, outcome and duration; --log-format json for one JSON object per line).
    GET /health is open; GET /metrics (Prometheus) answers this machine or an X-API-Key.
    """
    from ivrbot.serve import serve

    _serving_logs(ctx, log_level, log_format)

    try:
        asyncio.run(serve(flows_dir, host, port, console, workers=workers))
    except USER_ERRORS as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass


class _StepsInOrder(click.Command):
    """Keeps --press/--say/--play in the order given (click collects each option apart)."""

    def make_parser(self, ctx: click.Context) -> Any:
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_in_order(args: list[str]) -> Any:
            opts, largs, order = parse(args)
            ctx.meta["ivrbot.steps"] = [p.name for p in order if p.name in STEP_OPTIONS]
            return opts, largs, order

        parser.parse_args = parse_in_order  # type: ignore[method-assign]
        return parser


STEP_OPTIONS = ("press", "say", "play")


def _steps_in_order(ctx: click.Context, values: dict[str, tuple[str, ...]]) -> list[Any]:
    from ivrbot.scripted_call import ScriptStep

    order = ctx.meta.get("ivrbot.steps") or [k for k in STEP_OPTIONS for _ in values[k]]
    left = {kind: list(values[kind]) for kind in STEP_OPTIONS}
    return [ScriptStep(kind, left[kind].pop(0)) for kind in order]


def _print_call(result: dict[str, Any]) -> None:
    console.print(_timeline_table(f"ivrbot call {result['destination']}", result["events"]))
    _print_heard(result["heard_prompts"])
    if result["recording"]:
        console.print(f"recording: [bold]{result['recording']}[/] ({result['recorded_s']:.1f} s)")
    for problem in result["problems"]:
        console.print(f"[red]problem:[/] {problem}")
    colour = "green" if result["result"] == "completed" else "red"
    console.print(f"result: [bold {colour}]{result['result']}[/]")


@main.command(cls=_StepsInOrder)
@click.argument("destination")
@click.option(
    "--gateway",
    envvar="IVRBOT_GATEWAY",
    default="http://127.0.0.1:8890",
    show_default=True,
    help="The gateway to call through (IVRBOT_GATEWAY).",
)
@click.option("--user", default="caller", show_default=True, help="Call as USER@<domain>.")
@api_key_option
@click.option("--press", multiple=True, metavar="DIGITS", help="Press keys (0-9 * # A-D).")
@click.option("--say", multiple=True, metavar="TEXT", help="Speak words (synthesised).")
@click.option("--voice", default="ko", show_default=True, help="espeak-ng voice for --say.")
@click.option("--play", multiple=True, metavar="FILE.wav", help="Play a 16-bit PCM WAV file.")
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Listen this long at the end (default: until one more prompt has been heard).",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Record what the caller hears to a WAV file.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object instead of the timeline."
)
@click.pass_context
def call(
    ctx: click.Context,
    destination: str,
    gateway: str,
    user: str,
    press: tuple[str, ...],
    say: tuple[str, ...],
    voice: str,
    play: tuple[str, ...],
    wait_s: float | None,
    record: Path | None,
    as_json: bool,
    api_key: str | None,
) -> None:
    """Call DESTINATION through a running gateway and act like a caller.

    Steps (--press, --say, --play) run in the order given, each after the far end's prompt
    has finished; then the caller listens, hangs up and prints what happened. Outside
    development mode the gateway wants an API key (--api-key or IVRBOT_API_KEY).
    """
    from ivrbot.scripted_call import CallScript, ScriptError, run_script

    steps = _steps_in_order(ctx, {"press": press, "say": say, "play": play})
    script = CallScript(destination, steps, gateway, user, voice, wait_s, record, api_key or "")
    try:
        result = asyncio.run(run_script(script)).to_dict()
    except (ScriptError, *USER_ERRORS) as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        _print_call(result)
    sys.exit(0 if result["result"] == "completed" else 1)


main.add_command(flows)
main.add_command(calls)
main.add_command(dial)
main.add_command(models)
main.add_command(campaign)
main.add_command(sip)
