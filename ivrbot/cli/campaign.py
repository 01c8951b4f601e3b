"""``ivrbot campaign ...``: create, list, control and report outbound campaigns.

``create``, ``list``, ``status``, ``report`` and ``dnc`` work on the database (the server may
be down); ``start``, ``pause``, ``resume`` and ``cancel`` ask the running ``ivrbot run``,
whose scheduler places the calls.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ivrbot.campaign.campaign import CampaignError, load_campaign_file
from ivrbot.campaign.contacts import normalise, read_contacts
from ivrbot.campaign.report import attempts_csv, status_view, summary
from ivrbot.campaign.scheduler import ACTIONS
from ivrbot.campaign.store import CampaignStore
from ivrbot.cli.dial import DEFAULT_GATEWAY, find_flow
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.flow import FlowError

console = Console()
db_option = click.option("--db", default=lambda: Settings().db, show_default="IVRBOT_DB or ivrbot.db",
                         help="The database of ivrbot run.")  # fmt: skip


def _fail(message: str) -> NoReturn:
    click.echo(f"ivrbot: error: {message}", err=True)
    sys.exit(1)


def _store(db: str, *, read_only: bool = False) -> CampaignStore:
    """The campaign store in ``db``; a read-only command never creates a missing file."""
    if read_only and db != ":memory:" and not Path(db).exists():
        _fail(f"no store at {db} (give --db FILE, or set IVRBOT_DB)")
    try:
        return CampaignStore(db)
    except (CampaignError, OSError) as exc:
        _fail(str(exc))


@click.group()
def campaign() -> None:
    """Outbound call campaigns (run by the scheduler inside ivrbot run)."""


@campaign.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--contacts", type=click.Path(path_type=Path), help="The contact CSV (default: "
              "the campaign's contacts=).")  # fmt: skip
@click.option("--flows-dir", type=click.Path(path_type=Path), default=Path("flows"),
              show_default=True, help="Where the campaign's flow is.")  # fmt: skip
@db_option
def create(file: Path, contacts: Path | None, flows_dir: Path, db: str) -> None:
    """Create the campaign declared in FILE (campaign = Campaign(...)) with its contacts.

    Every bad row is listed with its line number and reason; duplicates are merged.
    """
    try:
        spec = load_campaign_file(file)
        find_flow(spec.flow, flows_dir, check_model=False)
        source = contacts or (Path(spec.contacts) if spec.contacts else None)
        if source is None:
            raise CampaignError(f"{file}: give contacts='file.csv' in it, or --contacts")
        result = read_contacts(source, spec.default_region)
        store = _store(db)
        store.create(spec, result.contacts)
        if spec.dnc:
            listed = read_contacts(Path(spec.dnc), spec.default_region, zones=False)
            store.dnc_add([c.number for c in listed.contacts], spec.name, "imported")
    except (CampaignError, FlowError) as exc:
        _fail(str(exc))
    for line, reason in result.errors:
        click.echo(f"{source}:{line}: {reason}", err=True)
    for line, first in result.duplicates:
        click.echo(f"{source}:{line}: same number as line {first} (merged)", err=True)
    click.echo(f"campaign {spec.name} created ({spec.flow}): {result.summary()}")
    click.echo(f"start it with: ivrbot campaign start {spec.name}  (ivrbot run must be running)")


@campaign.command(name="list")
@db_option
def list_(db: str) -> None:
    """The campaigns, their state and progress."""
    store = _store(db, read_only=True)
    table = Table("campaign", "flow", "state", "done", "dialling", "abandon")
    for name in store.names():
        r = summary(store, name)
        table.add_row(name, r["flow"], r["state"], f"{r['done']}/{r['total']}",
                      str(r["in_progress"]), f"{r['abandon_ratio']:.1%}")  # fmt: skip
    console.print(table)


async def _control(gateway: str, name: str, action: str) -> dict[str, Any]:
    headers = Credentials.operator().headers()
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{gateway}/ivrbot/campaigns/{name}/{action}") as resp:
            if resp.status != 200:
                raise CampaignError(await resp.text())
            body: dict[str, Any] = await resp.json()
            return body


def _control_command(action: str) -> click.Command:
    @click.command(name=action, help=f"{action.capitalize()} campaign NAME (in ivrbot run).")
    @click.argument("name")
    @click.option("--gateway", envvar="IVRBOT_GATEWAY", default=DEFAULT_GATEWAY,
                  show_default=True, help="The running ivrbot run.")  # fmt: skip
    def command(name: str, gateway: str) -> None:
        try:
            report = asyncio.run(_control(gateway.rstrip("/"), name, action))
        except aiohttp.ClientConnectionError as exc:
            _fail(f"no ivrbot run at {gateway} ({exc}): start it, or pass --gateway")
        except CampaignError as exc:
            _fail(str(exc))
        click.echo(f"campaign {name}: {report['state']}")

    return command


for _action in ACTIONS:
    campaign.add_command(_control_command(_action))


@campaign.command()
@click.argument("name")
@click.option("--watch", is_flag=True, help="Keep the progress bar live until it finishes.")
@click.option("--json", "as_json", is_flag=True, help="The summary as JSON.")
@db_option
def status(name: str, watch: bool, as_json: bool, db: str) -> None:
    """Progress of campaign NAME and its attempts by outcome."""
    store = _store(db, read_only=True)
    try:
        report = summary(store, name)
    except CampaignError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(report))
        return
    if not watch:
        console.print(status_view(report))
        return
    with Live(status_view(report), console=console, refresh_per_second=4) as live:
        try:
            while report["state"] in ("running", "paused", "created"):
                time.sleep(1.0)
                report = summary(store, name)
                live.update(status_view(report))
        except KeyboardInterrupt:
            pass


@campaign.command()
@click.argument("name")
@click.option("--csv", "as_csv", is_flag=True, help="Every attempt as CSV.")
@db_option
def report(name: str, as_csv: bool, db: str) -> None:
    """The results of campaign NAME: the summary as JSON, or every attempt as CSV."""
    store = _store(db, read_only=True)
    try:
        click.echo(
            attempts_csv(store, name) if as_csv else json.dumps(summary(store, name), indent=2),
            nl=not as_csv,
        )
    except CampaignError as exc:
        _fail(str(exc))


@campaign.group()
def dnc() -> None:
    """Do-not-call lists: the global one, or a campaign's (--campaign)."""


campaign_option = click.option("--campaign", "list_name", default="", help="A campaign's own list.")


@dnc.command(name="add")
@click.argument("numbers", nargs=-1, required=True)
@campaign_option
@db_option
def dnc_add(numbers: tuple[str, ...], list_name: str, db: str) -> None:
    """Never call NUMBERS again (checked at every dial)."""
    try:
        normalised = [normalise(n)[0] for n in numbers]
    except ValueError as exc:
        _fail(str(exc))
    added = _store(db).dnc_add(normalised, list_name, "added by hand")
    click.echo(f"{added} added to the {list_name or 'global'} do-not-call list")


@dnc.command(name="remove")
@click.argument("number")
@campaign_option
@db_option
def dnc_remove(number: str, list_name: str, db: str) -> None:
    """Take NUMBER off a do-not-call list."""
    try:
        e164 = normalise(number)[0]
    except ValueError as exc:
        _fail(str(exc))
    if not _store(db).dnc_remove(e164, list_name):
        _fail(f"{e164} is not on the {list_name or 'global'} do-not-call list")
    click.echo(f"{e164} removed")


@dnc.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@campaign_option
@db_option
def dnc_import(file: Path, list_name: str, db: str) -> None:
    """Add the numbers of a CSV (a 'number' column) to a do-not-call list."""
    try:
        result = read_contacts(file, zones=False)
    except CampaignError as exc:
        _fail(str(exc))
    for line, reason in result.errors:
        click.echo(f"{file}:{line}: {reason}", err=True)
    added = _store(db).dnc_add([c.number for c in result.contacts], list_name, f"imported {file}")
    click.echo(f"{added} added to the {list_name or 'global'} do-not-call list")


@dnc.command(name="list")
@campaign_option
@db_option
def dnc_list(list_name: str, db: str) -> None:
    """The numbers on a do-not-call list."""
    for number in _store(db, read_only=True).dnc_numbers(list_name):
        click.echo(number)


@campaign.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--gateway", envvar="IVRBOT_GATEWAY", default=DEFAULT_GATEWAY, show_default=True,
              help="The running ivrbot run.")  # fmt: skip
def callees(file: Path, gateway: str) -> None:
    """Simulated callees for trying a campaign: one Phone per row of the contact CSV FILE,
    logged in as its number, behaving as its 'simulate' column says (person, machine,
    reject, silent, opt-out). The numbers must be in the gateway's IVRBOT_VIRTUAL_NUMBERS.
    Runs until Ctrl-C."""
    try:
        result = read_contacts(file)
        rows = [(c.number, c.vars.get("simulate", "person")) for c in result.contacts]
        asyncio.run(_simulate(gateway.rstrip("/"), rows))
    except (CampaignError, ValueError) as exc:
        _fail(str(exc))
    except aiohttp.ClientConnectionError as exc:
        _fail(f"no ivrbot run at {gateway} ({exc}): start it, or pass --gateway")
    except KeyboardInterrupt:
        pass


async def _simulate(gateway: str, rows: list[tuple[str, str]]) -> None:
    from ivrbot.media.tts import Synthesizer
    from ivrbot.testing.callees import simulate

    async with Synthesizer() as tts:
        people = await simulate(gateway, rows, tts)
        click.echo(f"{len(people)} simulated callees logged in; Ctrl-C ends them")
        try:
            await asyncio.Event().wait()
        finally:
            for person in people:
                await person.close()
