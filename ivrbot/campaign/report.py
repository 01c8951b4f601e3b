"""Campaign progress and results: the summary the CLI and the HTTP API show (one shape for
both), every attempt as CSV (README: Outbound campaigns, the columns), and rich views: the
status bar and the report's tables."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ivrbot.campaign.activity import Activity, activity, iso
from ivrbot.campaign.campaign import Campaign, State
from ivrbot.campaign.clock import Clock
from ivrbot.campaign.dialer import ANSWERED, next_try
from ivrbot.campaign.store import CampaignStore

CSV_FIELDS = ["campaign", "contact_id", "contact_name", "number", "timezone", "attempt",
              "started_at_utc", "started_at_local", "ended_at_utc", "ended_at_local",
              "outcome", "next_retry_utc", "next_retry_local", "final",
              "answered_by", "flow_result", "recording", "call_id"]  # fmt: skip
ENDED = (State.CANCELED, State.FINISHED)  # no attempt follows, whatever the policy says


def summary(store: CampaignStore, name: str) -> dict[str, Any]:
    """{"name", "flow", "state", "total", "done", "in_progress", "outcomes", "abandon_ratio"}:
    contacts in all, finished and being dialled; attempts by outcome; abandoned answered
    calls over answered calls."""
    campaign, state = store.campaign(name)
    counts = store.counts(name)
    by_state, outcomes = counts["contacts"], counts["outcomes"]
    answered = sum(outcomes.get(o, 0) for o in ANSWERED)
    return {
        "name": name,
        "flow": campaign.flow,
        "state": str(state),
        "total": sum(by_state.values()),
        "done": by_state.get("done", 0),
        "in_progress": by_state.get("dialing", 0),
        "outcomes": dict(sorted(outcomes.items())),
        "abandon_ratio": round(outcomes.get("abandoned", 0) / answered, 4) if answered else 0.0,
    }


def _at(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


def attempt_records(store: CampaignStore, name: str) -> list[dict[str, Any]]:
    """Every attempt of campaign ``name`` as the CSV's columns (times as ISO 8601, in UTC
    and on the callee's clock; ``final``: no further attempt will be made for the contact)."""
    campaign, state = store.campaign(name)
    rows = store.report_rows(name)
    return [_record(campaign, state, row) for row in rows]


def _record(campaign: Campaign, state: State, row: dict[str, Any]) -> dict[str, Any]:
    zone = row["contact_zone"]
    ended = row["ended_at"]
    retry: datetime | None = None
    if ended is None:  # being dialled (or cut by a crash: settled at the next start)
        final = False
    elif row["attempt"] < row["contact_attempts"]:  # another attempt followed this one
        final = False
        retry = _at(next_try(campaign, row["outcome"], row["attempt"], ended))
    elif row["contact_state"] == "pending" and state not in ENDED:
        final = False
        retry = _at(row["contact_next_try_at"])
    else:
        final = True
    started = _at(row["started_at"])
    return {
        "campaign": campaign.name,
        "contact_id": row["contact_id"],
        "contact_name": row["contact_name"],
        "number": row["number"],
        "timezone": zone,
        "attempt": row["attempt"],
        "started_at_utc": iso(started),
        "started_at_local": iso(started, zone),
        "ended_at_utc": iso(_at(ended)) or "",
        "ended_at_local": iso(_at(ended), zone) or "",
        "outcome": row["outcome"],
        "next_retry_utc": iso(retry) or "",
        "next_retry_local": iso(retry, zone) or "",
        "final": "true" if final else "false",
        **{k: row[k] for k in ("answered_by", "flow_result", "recording", "call_id")},
    }


def attempts_csv(store: CampaignStore, name: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(attempt_records(store, name))
    return out.getvalue()


def full_report(
    store: CampaignStore, name: str, clock: Clock, served: bool | None = None
) -> dict[str, Any]:
    """The summary, what the campaign does now (activity.py), and per contact: its final
    outcome and how many attempts it took (``report --json``)."""
    report = summary(store, name)
    records = attempt_records(store, name)
    finals = Counter(r["outcome"] for r in records if r["final"] == "true")
    latest = {r["contact_id"]: r["attempt"] for r in records}  # the last one wins
    return {
        **report,
        "activity": activity(store, name, clock, served).to_dict(),
        "attempts": len(records),
        "final_outcomes": dict(sorted(finals.items())),
        "attempts_per_contact": {str(n): k for n, k in sorted(Counter(latest.values()).items())},
        "never_attempted": report["total"] - len(latest),
    }


def status_view(report: dict[str, Any], now: Activity | None = None) -> Group:
    """A progress bar (contacts done of all), the counts by outcome, and what it does now."""
    bar = Progress(TextColumn(f"[bold]{report['name']}[/] ({report['state']})"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.fields[active]} dialling"))  # fmt: skip
    bar.add_task("", total=report["total"] or 1, completed=report["done"],
                 active=report["in_progress"])  # fmt: skip
    table = Table(title_justify="left")
    table.add_column("outcome")
    table.add_column("attempts", justify="right")
    for outcome, n in report["outcomes"].items():
        table.add_row(outcome, str(n))
    if not report["outcomes"]:
        table.add_row("(no attempt yet)", "0")
    lines: list[Any] = [bar, table]
    if now is not None:
        lines.append(f"now: {now.text}")
    lines.append(f"flow {report['flow']}, abandon ratio {report['abandon_ratio']:.1%}")
    return Group(*lines)


def report_view(report: dict[str, Any]) -> Group:
    """``full_report`` for a person: totals, outcomes (attempts and final per contact), and
    contacts by the number of attempts they took."""
    title = f"[bold]campaign {report['name']}[/] (flow {report['flow']}, {report['state']})"
    totals = Table(title="totals", title_justify="left", show_header=False)
    totals.add_column("", style="bold")
    totals.add_column("", justify="right")
    waiting = report["total"] - report["done"] - report["in_progress"]
    for label, value in (
        ("contacts", report["total"]), ("final", report["done"]),
        ("dialling now", report["in_progress"]), ("to call or retry", waiting),
        ("attempts", report["attempts"]), ("abandon ratio", f"{report['abandon_ratio']:.1%}"),
    ):  # fmt: skip
        totals.add_row(label, str(value))
    outcomes = Table(title="outcomes", title_justify="left")
    outcomes.add_column("outcome")
    outcomes.add_column("attempts", justify="right")
    outcomes.add_column("share", justify="right")
    outcomes.add_column("contacts final", justify="right")
    ended = sum(report["outcomes"].values())
    for outcome in sorted({*report["outcomes"], *report["final_outcomes"]}):
        n = report["outcomes"].get(outcome, 0)
        outcomes.add_row(outcome, str(n), f"{n / ended:.0%}" if ended else "-",
                         str(report["final_outcomes"].get(outcome, 0)))  # fmt: skip
    if not ended:
        outcomes.add_row("(no attempt yet)", "0", "-", "0")
    tries = Table(title="attempts per contact", title_justify="left")
    tries.add_column("attempts", justify="right")
    tries.add_column("contacts", justify="right")
    if report["never_attempted"]:
        tries.add_row("0", str(report["never_attempted"]))
    for n, contacts in report["attempts_per_contact"].items():
        tries.add_row(n, str(contacts))
    now = report["activity"]["text"]
    return Group(title, totals, outcomes, tries, f"now: {now}",
                 f"every attempt: ivrbot campaign report {report['name']} --csv")  # fmt: skip
