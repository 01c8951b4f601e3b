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
from ivrbot.flow.flow import Flow, FlowError
from ivrbot.flow.loader import load_flow_file, load_flows
from ivrbot.outcomes import ANSWERED
from ivrbot.phone.transport import GatewayUnreachable

DEFAULT_GATEWAY = "http://127.0.0.1:8890"


def find_flow(name: str, folder: Path, check_model: bool = True) -> Flow:
    """A flow by file path or by name in ``folder``."""
    candidate = Path(name)
    if candidate.suffix == ".py" and candidate.is_file():
        return load_flow_file(candidate, check_model=check_model)
    for flow in load_flows(folder, check_model=check_model):
        if flow.name == name:
            return flow
    raise FlowError(f"no flow named {name!r} in {folder}/ (ivrbot flows check lists them)")


async def dial_once(
    flow: Flow, number: str, gateway: str, settings: Settings | None = None
) -> dict[str, Any]:
    """One outbound call of ``flow`` to ``number`` through the gateway at ``gateway``."""
    async with assemble(settings or Settings(), remote=gateway) as parts:
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
def dial(flow_name: str, number: str, gateway: str, flows_dir: Path, as_json: bool) -> None:
    """Call NUMBER and run FLOW_NAME (a flow's name or file) on the call.

    The flow learns whether a person or an answering machine answered
    (call.vars['answered_by']); after a machine it starts after the beep.
    """
    try:
        flow = find_flow(flow_name, flows_dir)
        record = asyncio.run(dial_once(flow, number, gateway.rstrip("/")))
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
    sys.exit(0 if record["outcome"] in ANSWERED else 1)  # answered: 0
