"""``ivrbot sip ...``: the SIP connector of a running ``ivrbot run`` (registrations, trunks,
active SIP calls) and checking a SIP configuration file."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import click
from rich.console import Console
from rich.table import Table

from ivrbot.config import Settings
from ivrbot.endpoints.sip.routes import STATUS_PATH
from ivrbot.endpoints.sip.settings import SipConfigError, load_sip_settings


@click.group()
def sip() -> None:
    """SIP trunks, registrations and calls (IVRBOT_SIP_CONFIG names the TOML file)."""


async def _fetch(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as client, client.get(url + STATUS_PATH) as response:
        if response.status == 404:
            raise click.ClickException(
                f"{url} runs no SIP connector (start `ivrbot run` with IVRBOT_SIP_CONFIG set)"
            )
        if response.status != 200:
            raise click.ClickException(f"{url}: {response.status} {await response.text()}")
        data: dict[str, Any] = await response.json()
        return data


@sip.command()
@click.option("--url", default=None, help="The gateway (default: IVRBOT_HOST / IVRBOT_PORT).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(url: str | None, as_json: bool) -> None:
    """Registrations, trunks and active SIP calls of a running gateway."""
    url = url or Settings().base_url
    try:
        data = asyncio.run(_fetch(url))
    except aiohttp.ClientError as exc:
        raise click.ClickException(f"cannot reach the gateway at {url}: {exc}") from None
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    console = Console()
    ports = ", ".join(f"{k.upper()} {v}" for k, v in data.get("transports", {}).items())
    console.print(f"SIP on {ports or data['port']}; INVITEs refused: {data['rejected']}")
    table = Table("account", "registered", "last response")
    for reg in data["registrations"]:
        table.add_row(reg["account"], "yes" if reg["active"] else "no",
                      f"{reg['code']} {reg['reason']}")  # fmt: skip
    console.print(table)
    trunks = Table("trunk", "allowed addresses", "dials through")
    for trunk in data["trunks"]:
        trunks.add_row(trunk["name"], ", ".join(trunk["allow"]) or "-", trunk["uri"] or "-")
    console.print(trunks)
    calls = Table("trunk / account", "party", "answered", "seconds", "transport", "SRTP")
    for call in data["calls"]:
        calls.add_row(call["trunk"], call["party"], str(call["answered"]), str(call["seconds"]),
                      call["transport"].upper(), "yes" if call["srtp"] else "no")  # fmt: skip
    console.print(calls)


@sip.command()
@click.argument("config", type=click.Path(dir_okay=False))
def check(config: str) -> None:
    """Check a SIP configuration file (TOML) and summarise it."""
    try:
        settings = load_sip_settings(config, Settings().sip_overrides())
    except SipConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"SIP port {settings.port}, media ports {settings.media_ports[0]}-"
        f"{settings.media_ports[1]}: {len(settings.trunks)} trunk(s), "
        f"{len(settings.accounts)} account(s)"
    )
    listens = [
        f"{name.upper()} on {settings.port}" for name in settings.transports if name != "tls"
    ]
    if "tls" in settings.transports:
        tls_port = settings.tls_port if settings.tls_port is not None else settings.port + 1
        listens.append(f"TLS on {tls_port} (certificate {settings.tls_cert_file})")
    click.echo("transports: " + ", ".join(listens))
    for trunk in settings.trunks.values():
        out = f", calls out over {trunk.transport.upper()}" if trunk.uri else ""
        refer = ", transfers to its numbers by REFER" if trunk.refer else ""
        click.echo(f"trunk {trunk.name}: SRTP {trunk.srtp}{out}{refer}")
    for account in settings.accounts.values():
        click.echo(f"account {account.name}: SRTP {account.srtp}")
