"""Campaign progress and results: the summary the CLI and the HTTP API show (one shape for
both), the attempts as CSV, and a rich table with a progress bar."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from ivrbot.campaign.dialer import ANSWERED
from ivrbot.campaign.store import CampaignStore

CSV_FIELDS = ["contact_id", "number", "attempt", "started_at", "ended_at", "outcome",
              "answered_by", "flow_result", "recording", "call_id"]  # fmt: skip


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


def attempts_csv(store: CampaignStore, name: str) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in store.attempt_rows(name):
        writer.writerow(row)
    return out.getvalue()


def status_view(report: dict[str, Any]) -> Group:
    """A progress bar (contacts done of all) and the counts by outcome."""
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
    return Group(bar, table, f"flow {report['flow']}, abandon ratio {report['abandon_ratio']:.1%}")
