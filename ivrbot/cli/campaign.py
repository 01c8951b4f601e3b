"""``ivrbot campaign ...``: create, list, control, report and delete outbound campaigns.

``create``, ``list``, ``status``, ``report`` and ``dnc`` work on the database (the server may
be down); ``start``, ``pause``, ``resume`` and ``cancel`` ask the running ``ivrbot run``,
whose scheduler places the calls; ``delete`` asks it too, or works on the database when no
ivrbot run answers. Every error is one line naming what to fix.
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
from sqlalchemy.exc import SQLAlchemyError

from ivrbot.campaign.activity import activity
from ivrbot.campaign.campaign import CampaignError, State, load_campaign_file
from ivrbot.campaign.contacts import normalise, read_contacts
from ivrbot.campaign.report import attempts_csv, full_report, report_view, status_view, summary
from ivrbot.campaign.scheduler import ACTIONS, saved_clock
from ivrbot.campaign.store import CampaignStore
from ivrbot.cli.dial import DEFAULT_GATEWAY, api_key_option, find_flow
from ivrbot.config import Settings
from ivrbot.credentials import Credentials
from ivrbot.flow.flow import FlowError

console = Console()
db_option = click.option("--db", default=lambda: Settings().db, show_default="IVRBOT_DB or ivrbot.db",
                         help="The database of ivrbot run.")  # fmt: skip
gateway_option = click.option("--gateway", envvar="IVRBOT_GATEWAY", default=DEFAULT_GATEWAY,
                              show_default=True, help="The running ivrbot run.")  # fmt: skip
HTTP_TIMEOUT_S = 30.0


def _fail(message: str) -> NoReturn:
    click.echo(f"ivrbot: error: {' '.join(message.split())}", err=True)
    sys.exit(1)


def _store(db: str, *, read_only: bool = False) -> CampaignStore:
    """The campaign store in ``db``; a read-only command never creates a missing file."""
    if read_only and db != ":memory:" and not Path(db).exists():
        _fail(f"no store at {db} (give --db FILE, or set IVRBOT_DB)")
    try:
        return CampaignStore(db)
    except (CampaignError, OSError) as exc:
        _fail(str(exc))


class _Campaigns(click.Group):
    """Any campaign command: a campaign that cannot be found or changed, or a database that
    cannot be read, is one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (CampaignError, FlowError) as exc:
            _fail(str(exc))
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc.__class__.__name__
            _fail(f"the database {ctx.params.get('db') or Settings().db}: {reason}")


@click.group(cls=_Campaigns)
@api_key_option
@click.pass_context
def campaign(ctx: click.Context, api_key: str | None) -> None:
    """Outbound call campaigns (run by the scheduler inside ivrbot run)."""
    ctx.meta[API_KEY] = api_key


API_KEY = "ivrbot.campaign.api_key"  # --api-key of the campaign group, for _request


def _operator() -> Credentials:
    """What the commands present to ivrbot run: --api-key, else the operator's credentials
    when this environment has a client secret of its own, else IVRBOT_API_KEY, else the
    development operator's (Credentials.for_bots)."""
    ctx = click.get_current_context(silent=True)
    return Credentials.for_bots(ctx.meta.get(API_KEY) if ctx is not None else None)


class GatewayError(CampaignError):
    """ivrbot run did not answer, or refused the request: the message says which and why."""


def _error_text(body: str) -> str:
    """The message of an error body: a gateway RequestError's text (its first variable, the
    reason itself), or the body as it is."""
    try:
        error = json.loads(body)["RequestError"]
        inner = error.get("ServiceException") or error.get("PolicyException")
        return str((inner.get("Variables") or [inner["Text"]])[0])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        return body.strip() or "(no reason given)"


async def _request(gateway: str, method: str, path: str, **params: str) -> dict[str, Any]:
    """One call of the campaign HTTP API of ivrbot run at ``gateway``, as the operator."""
    headers = _operator().headers()
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    url = f"{gateway}/ivrbot/campaigns{path}"
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            async with http.request(method, url, params=params) as resp:
                text = await resp.text()
                status = resp.status
    except aiohttp.ClientConnectionError as exc:
        raise GatewayError(
            f"no ivrbot run at {gateway} ({exc}): start it, or pass --gateway"
        ) from exc
    except TimeoutError as exc:
        raise GatewayError(
            f"ivrbot run at {gateway} did not answer in {HTTP_TIMEOUT_S:g} s"
        ) from exc
    if status in (401, 403):
        raise GatewayError(
            f"{status} from ivrbot run at {gateway}: {_error_text(text)} (campaign commands "
            "log in as the operator: IVRBOT_CLIENT_ID and IVRBOT_CLIENT_SECRET as ivrbot run "
            "has them, or an API key: ivrbot campaign --api-key KEY, or IVRBOT_API_KEY)"
        )
    if status != 200:
        raise GatewayError(_error_text(text))
    try:
        body: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise GatewayError(f"{gateway} is not an ivrbot run (HTTP {status}, not JSON)") from exc
    return body


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


def _control_command(action: str) -> click.Command:
    @click.command(name=action, help=f"{action.capitalize()} campaign NAME (in ivrbot run).")
    @click.argument("name")
    @gateway_option
    def command(name: str, gateway: str) -> None:
        report = asyncio.run(_request(gateway.rstrip("/"), "POST", f"/{name}/{action}"))
        click.echo(f"campaign {name}: {report['state']}")
        if "activity" in report:
            click.echo(f"now: {report['activity']['text']}")

    return command


for _action in ACTIONS:
    campaign.add_command(_control_command(_action))


@campaign.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete it even while it runs or is paused (it is "
              "canceled first; a call in progress goes on to its end, unrecorded).")  # fmt: skip
@gateway_option
@db_option
def delete(name: str, force: bool, gateway: str, db: str) -> None:
    """Delete campaign NAME with its contacts and attempts; a campaign of that name can then
    be created again. A running or paused one is refused: cancel it first, or --force.

    Asks ivrbot run (its scheduler forgets the campaign); when none answers, deletes it from
    the database. Its do-not-call list stays (opt-outs outlive the campaign).
    """
    try:
        gone = asyncio.run(_request(gateway.rstrip("/"), "DELETE", f"/{name}",
                                    **({"force": "true"} if force else {})))  # fmt: skip
        where = f"by ivrbot run at {gateway}"
    except GatewayError as exc:
        if not isinstance(exc.__cause__, aiohttp.ClientConnectionError) or not Path(db).exists():
            raise
        store = _store(db, read_only=True)
        _, state = store.campaign(name)
        if state in (State.RUNNING, State.PAUSED) and not force:
            raise CampaignError(f"campaign {name} is {state}: cancel it first (ivrbot campaign "
                                f"cancel {name}) or delete it with --force") from None  # fmt: skip
        gone = store.delete(name)
        where = f"from {db} (no ivrbot run answers at {gateway})"
    click.echo(f"campaign {name} deleted {where}: {gone['contacts']} contacts, "
               f"{gone['attempts']} attempts")  # fmt: skip


@campaign.command()
@click.argument("name")
@click.option("--watch", is_flag=True, help="Keep the progress bar live until it finishes.")
@click.option("--json", "as_json", is_flag=True, help="The summary and activity as JSON.")
@db_option
def status(name: str, watch: bool, as_json: bool, db: str) -> None:
    """Progress of campaign NAME, its attempts by outcome, and what it does now: dialling,
    or why not and when the next call is due (outside calling hours until HH:MM, waiting
    for retries until ..., paused, done ...), on the campaign clock ivrbot run uses."""
    store = _store(db, read_only=True)
    clock = saved_clock(store)

    def now() -> tuple[dict[str, Any], Any]:
        report = summary(store, name)
        return report, activity(store, name, clock)

    report, doing = now()
    if as_json:
        click.echo(json.dumps({**report, "activity": doing.to_dict()}))
        return
    if not watch:
        console.print(status_view(report, doing))
        return
    with Live(status_view(report, doing), console=console, refresh_per_second=4) as live:
        try:
            while report["state"] in ("running", "paused", "created"):
                time.sleep(1.0)
                report, doing = now()
                live.update(status_view(report, doing))
        except KeyboardInterrupt:
            pass


@campaign.command()
@click.argument("name")
@click.option("--csv", "as_csv", is_flag=True, help="Every attempt as CSV (columns: README, "
              "Outbound campaigns).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="The totals as JSON, for machines.")
@db_option
def report(name: str, as_csv: bool, as_json: bool, db: str) -> None:
    """The results of campaign NAME: totals, outcomes and attempts per contact as a table;
    --json for machines; --csv for every attempt."""
    if as_csv and as_json:
        _fail("give --csv or --json, not both")
    store = _store(db, read_only=True)
    if as_csv:
        click.echo(attempts_csv(store, name), nl=False)
        return
    data = full_report(store, name, saved_clock(store))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        console.print(report_view(data))


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
    from ivrbot.speech.tts import Synthesizer
    from ivrbot.testing.callees import simulate

    async with Synthesizer() as tts:
        people = await simulate(gateway, rows, tts)
        click.echo(f"{len(people)} simulated callees logged in; Ctrl-C ends them")
        try:
            await asyncio.Event().wait()
        finally:
            for person in people:
                await person.close()
