"""`flowcase governance …`: import a historical event log into governance's database, export
what it holds as OCEL 2.0. Both talk to the database directly (the service need not run)."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg
import typer
from rich.console import Console
from rich.progress import Progress

from flowcase.events.settings import DatabaseSettings
from flowcase.governance.history import (
    ImportReport,
    export_ocel2,
    first_rejection,
    import_history,
)
from flowcase.governance.log_readers import read_csv, read_jsonl, utf8_problem
from flowcase.governance.ocel2 import read_ocel2_file
from flowcase.governance.projection import Projection
from flowcase.governance.repository import FactRepository
from flowcase.runtime.progress import progress_bar

app = typer.Typer(help="Governance: history in and out.", no_args_is_help=True)


@app.callback()
def governance() -> None:
    """Governance: import a historical event log, export the object-centric event log."""


class ImportFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    OCEL2 = "ocel2"


class ExportFormat(StrEnum):
    OCEL2 = "ocel2"


_SUFFIXES = {
    ".csv": ImportFormat.CSV,
    ".jsonl": ImportFormat.JSONL,
    ".ndjson": ImportFormat.JSONL,
    ".json": ImportFormat.OCEL2,
    ".jsonocel": ImportFormat.OCEL2,
}

DATABASE_URL = typer.Option(
    None,
    "--database-url",
    help="Governance's database; FLOWCASE_DATABASE_URL, else the local stack's "
    "flowcase_governance.",
)

stderr = Console(stderr=True)


@contextmanager
def _records(path: Path, kind: ImportFormat, progress: Progress, label: str) -> Iterator[Any]:
    """The file's parsed records, read with a progress bar over its bytes (an OCEL log's twice:
    its objects, then its events)."""
    if kind is ImportFormat.OCEL2:

        def opened(part: str) -> BinaryIO:
            return progress.open(path, "rb", description=f"{label} ({part})")

        yield read_ocel2_file(opened)
    elif kind is ImportFormat.CSV:
        with path.open("rb") as raw:
            not_utf8 = utf8_problem(iter(functools.partial(raw.read, 1 << 20), b""))
        if not_utf8 is not None:
            yield iter([not_utf8])
            return
        with progress.open(path, "rt", encoding="utf-8-sig", newline="", description=label) as text:
            yield read_csv(text)
    else:
        with progress.open(path, "rb", description=label) as f:
            yield read_jsonl(f)


@app.command("import")
def import_(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="The event log to import."
    ),
    log_format: ImportFormat | None = typer.Option(
        None,
        "--format",
        help="csv, jsonl (Flowcase envelopes) or ocel2 (OCEL 2.0 JSON); "
        "by default from the file's suffix (.csv, .jsonl/.ndjson, .json).",
    ),
    fail_fast: bool = typer.Option(
        False,
        "--fail-fast",
        help="Check the whole file first and import nothing if a record is invalid "
        "(default: import the valid records and report the others).",
    ),
    batch_size: int = typer.Option(5000, min=1, help="Events folded and stored per transaction."),
    database_url: str | None = DATABASE_URL,
) -> None:
    """Load a historical event log into governance's facts.

    It goes through the projection live traffic uses: the figures are those the same events
    would give live, and importing the same file again changes nothing (its events are counted
    as already present). Invalid records are reported with their line (or their OCEL event) and
    why; the exit code is 1 if any was, or if the file holds no events at all."""
    kind = log_format or _SUFFIXES.get(file.suffix.lower())
    if kind is None:
        typer.echo(f"cannot tell the format of {file.name}: give --format", err=True)
        raise typer.Exit(2)
    if fail_fast:
        with (
            progress_bar(stderr) as progress,
            _records(file, kind, progress, "checking") as records,
        ):
            rejected = first_rejection(records)
        if rejected is not None:
            typer.echo(f"{file}: {rejected}", err=True)
            typer.echo("nothing imported (--fail-fast)", err=True)
            raise typer.Exit(1)
    url = database_url or DatabaseSettings.of_service("governance").url
    report = asyncio.run(_import(url, file, kind, batch_size))
    if not (report.new or report.already_present or report.rejected):
        typer.echo(f"{file} holds no events: nothing imported", err=True)
        raise typer.Exit(1)
    typer.echo(
        f"imported {report.new} new events from {file} ({report.already_present} already "
        f"present, {len(report.rejected)} invalid records skipped"
        + (", listed above)" if report.rejected else ")")
    )
    if report.rejected:
        raise typer.Exit(1)


async def _import(url: str, file: Path, kind: ImportFormat, batch_size: int) -> ImportReport:
    async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
        repository = FactRepository(pool)
        await repository.create_tables()
        with (
            progress_bar(stderr) as progress,
            _records(file, kind, progress, "importing") as records,
        ):
            return await import_history(
                records,
                Projection(repository),
                batch_size=batch_size,
                on_rejected=lambda r: progress.console.print(
                    f"{file}: {r}", markup=False, highlight=False, soft_wrap=True
                ),
            )


@app.command()
def export(
    export_format: ExportFormat = typer.Option(
        ExportFormat.OCEL2, "--format", help="ocel2: OCEL 2.0 JSON (PM4Py reads it)."
    ),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="The file to write; standard output by default."
    ),
    database_url: str | None = DATABASE_URL,
) -> None:
    """Write the object-centric event log (OCEL 2.0) of what governance holds.

    Objects `request` and `case`, events reconstructed from the stored facts."""
    url = database_url or DatabaseSettings.of_service("governance").url
    document = asyncio.run(_export(url))
    text = json.dumps(document, indent=1) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    output.write_text(text)
    events, objects = len(document["events"]), len(document["objects"])
    typer.echo(f"wrote {events} events of {objects} objects to {output}", err=True)


async def _export(url: str) -> dict[str, Any]:
    async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
        repository = FactRepository(pool)
        await repository.create_tables()
        return await export_ocel2(repository)
