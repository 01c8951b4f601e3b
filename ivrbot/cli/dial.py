"""``ivrbot dial FLOW NUMBER``: the flow calls out, through a running gateway."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from ivrbot.compose import assemble
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.errors import PhoneException
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.loader import load_flow_file, load_flows_apart
from ivrbot.phone.transport import GatewayUnreachable

DEFAULT_GATEWAY = "http://127.0.0.1:8890"

# the commands that get tokens from a gateway (ivrbot call, ivrbot dial); read through
# Settings (IVRBOT_API_KEY) when not given, as every setting is
api_key_option = click.option(
    "--api-key",
    default=None,
    metavar="KEY",
    help="Present this API key (one of the gateway's IVRBOT_API_KEYS) to get tokens; "
    "default: IVRBOT_API_KEY. Needed when the gateway is not in development mode.",
)


def find_flow(name: str, folder: Path, check_model: bool = True) -> Flow:
    """A flow by file path or by name in ``folder`` (other files of the folder that do not
    load are no obstacle; the named flow's own problem is raised)."""
    candidate = Path(name)
    if candidate.suffix == ".py" and candidate.is_file():
        return load_flow_file(candidate, check_model=check_model)
    flows, problems = load_flows_apart(folder, check_model=check_model)
    for flow in flows:
        if flow.name == name:
            return flow
    for path, problem in problems:
        if path.stem == name:
            raise problem
    hint = ""
    if problems:
        hint = "; 1 file does not load" if len(problems) == 1 else f"; {len(problems)} do not load"
    raise FlowError(
        f"no flow named {name!r} in {folder}/ (ivrbot flows check {folder} lists them{hint})"
    )


async def dial_once(
    flow: Flow,
    number: str,
    gateway: str,
    settings: Settings | None = None,
    credentials: Credentials | None = None,
) -> dict[str, Any]:
    """One outbound call of ``flow`` to ``number`` through the gateway at ``gateway``; the
    bot presents ``credentials`` (default: :meth:`Credentials.for_bots`)."""
    settings = settings or Settings()
    async with assemble(settings, remote=gateway) as parts:
        parts.credentials = credentials or Credentials.for_bots(settings=settings)
        bot = await parts.serve(flow, inbound=False)
        flow_call = await bot.dial(number)
        record = await bot.finished_call(flow_call)
    out = record.to_dict()
    out["answered_by"] = flow_call.vars.get("answered_by")
    out["beep"] = flow_call.vars.get("beep")
    return out


@click.command()
@click.argument("flow_name")
@click.argument("number")
@click.option("--gateway", envvar="IVRBOT_GATEWAY", default=DEFAULT_GATEWAY, show_default=True,
              help="The running gateway (ivrbot run).")  # fmt: skip
@click.option(
    "--flows-dir", type=click.Path(path_type=Path), default=Path("flows"), show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the call record as JSON.")
@api_key_option
def dial(
    flow_name: str, number: str, gateway: str, flows_dir: Path, as_json: bool, api_key: str | None
) -> None:
    """Call NUMBER and run FLOW_NAME (a flow's name or file) on the call.

    The flow learns whether a person or an answering machine answered
    (call.vars['answered_by']); after a machine it starts after the beep. The bot presents
    --api-key (or IVRBOT_API_KEY), else the operator's IVRBOT_CLIENT_ID and
    IVRBOT_CLIENT_SECRET (those are needed for a number the gateway's own flows answer).
    """
    credentials = Credentials.for_bots(api_key)  # refused: one line (ivrbot.cli.main)
    try:
        flow = find_flow(flow_name, flows_dir)
        record = asyncio.run(dial_once(flow, number, gateway.rstrip("/"), credentials=credentials))
    except PhoneException as exc:  # logging in as the flow's number, or dialling
        click.echo(f"ivrbot: error: {flow.name}: {exc.error.error_message}", err=True)
        sys.exit(1)
    except GatewayUnreachable as exc:
        click.echo(f"ivrbot: error: no gateway at {gateway} ({exc}): start one with "
                   "'ivrbot run' or pass --gateway", err=True)  # fmt: skip
        sys.exit(1)
    except FlowError as exc:
        click.echo(f"ivrbot: error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
    else:
        click.echo(f"{record['flow']} -> {number}: {record['outcome']}"
                   f" (answered by {record['answered_by'] or '-'})")  # fmt: skip
        click.echo("path: " + " -> ".join(record["path"]))
        for text in record["prompts"]:
            click.echo(f"  bot said: {text}")
        for i in record["inputs"]:
            click.echo(f"  input at {i['step']}: {i['outcome']} {i['value']}")
    sys.exit(0 if record["outcome"] != "not-answered" else 1)
