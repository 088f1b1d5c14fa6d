"""`flowcase processes …`: check process definitions before they are published, and what a
proposed one would do to real history (`what-if`)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from flowcase.events import Envelope, EventDecodeError, decode_all
from flowcase.events.settings import DatabaseSettings
from flowcase.eventstore import postgres_env
from flowcase.runtime.progress import progress_bar
from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import (
    InvalidDefinition,
    check_folder,
    load_definition,
    shipped_folder,
)
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.what_if import (
    PastRequest,
    Run,
    WhatIf,
    stated_by_envelopes,
    stored,
    what_if,
)

app = typer.Typer(help="Process definitions of the workflow service.", no_args_is_help=True)


@app.callback()
def processes() -> None:
    """Process definitions of the workflow service."""


@app.command()
def validate(
    folder: Path | None = typer.Argument(
        None,
        exists=True,
        file_okay=False,
        help="Folder of definition files (*.yaml); the definitions shipped with the service "
        "by default.",
    ),
) -> None:
    """Validate every definition in FOLDER; exit non-zero if any has a problem."""
    folder = folder or shipped_folder()
    reports = check_folder(folder)
    if not reports:
        typer.echo(f"no definition files (*.yaml, *.yml) in {folder}", err=True)
        raise typer.Exit(1)
    for report in reports:
        if report.definition:
            d = report.definition
            steps = f"{len(d.steps)} step" + ("s" if len(d.steps) != 1 else "")
            typer.echo(
                f"ok    {report.path.name}: {d.name} v{d.version} serves {d.request_type} ({steps})"
            )
        else:
            typer.echo(f"FAIL  {report.path.name}")
            for problem in report.problems:
                typer.echo(f"      {problem}")
    failed = sum(1 for report in reports if report.problems)
    if failed:
        typer.echo(f"{failed} of {len(reports)} definition files have problems", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(reports)} definitions valid")


stderr = Console(stderr=True)


@app.command("what-if")
def what_if_command(
    proposed: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="The proposed definition (YAML)."
    ),
    history: Path | None = typer.Option(
        None,
        "--history",
        exists=True,
        dir_okay=False,
        help="A history file to replay: Flowcase envelopes as JSON lines (the workflow's "
        "events, as its topic carries them; other events are passed over). Without it, the "
        "requests stored in the workflow's database.",
    ),
    since: datetime | None = typer.Option(
        None, help="Only requests started at or after this (UTC unless it says otherwise)."
    ),
    until: datetime | None = typer.Option(None, help="Only requests started before this."),
    changes: int = typer.Option(20, min=0, help="How many changed requests to list."),
    as_json: bool = typer.Option(False, "--json", help="The whole report as JSON."),
    database_url: str | None = typer.Option(
        None,
        "--database-url",
        help="The workflow's database, read without --history; FLOWCASE_DATABASE_URL, else the "
        "local stack's flowcase_workflow.",
    ),
) -> None:
    """Run PROPOSED over the requests of its type in a history, with the pure engine, and show
    what it would change beside what happened: nothing is stored, sent or published.

    Approvals are decided as they were where the request faced the same step and role (else
    they stay pending), actions fail only where they failed, timers fire only where they
    fired, and overrides are not replayed."""
    try:
        definition = load_definition(proposed)
    except InvalidDefinition as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    since, until = since and _aware(since), until and _aware(until)
    with progress_bar(stderr) as progress:
        if history is not None:
            with progress.open(history, "rb", description="reading the history") as lines:
                past = [
                    p
                    for p in PastRequest.of(stated_by_envelopes(_envelopes(lines)))
                    if p.request_type == definition.request_type and _within(p, since, until)
                ]
            source = str(history)
        else:
            url = database_url or DatabaseSettings.of_service("workflow").url
            past = _stored(url, definition.request_type, since, until, progress)
            source = "the workflow's database"
        task = progress.add_task("replaying", total=len(past))
        result = what_if(definition, past, on_request=lambda: progress.advance(task))
    if not past:
        typer.echo(
            f"{source} holds no started request of type {definition.request_type}"
            + (" in that period" if since or until else ""),
            err=True,
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(result), default=str, indent=1))
        return
    _show(result, definition, changes)


def _envelopes(lines: Any) -> Iterator[Envelope]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield from decode_all(line)
        except EventDecodeError as exc:
            stderr.print(f"line {number}: {exc.reason}: {exc.detail}", markup=False)


def _within(past: PastRequest, since: datetime | None, until: datetime | None) -> bool:
    started = past.started_at
    assert started is not None
    return (since is None or started >= since) and (until is None or started < until)


def _stored(
    url: str, request_type: str, since: datetime | None, until: datetime | None, progress: Progress
) -> list[PastRequest]:
    """The requests of the type started in the period, from the workflow's own store: the
    instance list names them, each instance's stored turns tell what happened."""

    async def started() -> list[UUID]:
        async with asyncpg.create_pool(url, min_size=1, max_size=1) as pool:
            return await ReadModel(pool).started(request_type, since, until)

    request_ids = asyncio.run(started())
    task = progress.add_task("reading the stored requests", total=len(request_ids))
    application = WorkflowApplication(DefinitionRegistry(), env=postgres_env(url, pool_size=1))
    try:
        return stored(application.turns, request_ids, on_request=lambda: progress.advance(task))
    finally:
        application.close()


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _show(result: WhatIf, definition: ProcessDefinition, listed: int) -> None:
    happened, proposed = result.happened, result.proposed
    table = Table(title=f"{definition.name}: as it happened, and under v{definition.version}")
    table.add_column("")
    table.add_column("happened", justify="right")
    table.add_column(f"v{definition.version}", justify="right")

    def row(label: str, value: Any) -> None:
        table.add_row(label, str(value(happened)), str(value(proposed)))

    def keyed(label: str, of: Any, order: list[str] | None = None) -> None:
        keys = set(of(happened)) | set(of(proposed))
        first = [key for key in order or [] if key in keys]
        for key in first + sorted(keys - set(first)):
            table.add_row(
                f"{label} {key}", str(of(happened).get(key, 0)), str(of(proposed).get(key, 0))
            )

    row("requests", lambda f: f.requests)
    row("completed", lambda f: f.completed)
    row("refused at validation", lambda f: f.refused_at_validation)
    keyed("escalated:", lambda f: f.escalated)
    keyed("pending approval:", lambda f: f.pending)
    keyed("approvals asked:", lambda f: f.approvals)
    keyed("passed step", lambda f: f.passed, [step.name for step in definition.steps])
    row("overrides", lambda f: f.overrides)
    row("exception rate", lambda f: "-" if f.exception_rate is None else f"{f.exception_rate:.1%}")
    row("recommendation", lambda f: f.approach or "none")
    console = Console()
    console.print(table)
    console.print(f"happened: {happened.advice}", highlight=False)
    console.print(f"v{definition.version}: {proposed.advice}", highlight=False)
    console.print(f"{len(result.changes)} requests change their outcome", highlight=False)
    for change in result.changes[:listed]:
        console.print(
            f"  {change.request_id}: {_said(change.happened)} -> {_said(change.proposed)}"
            f" (routes part at {change.parted_at})",
            highlight=False,
        )
    console.print("Not predicted:", highlight=False)
    for note in result.not_predicted:
        console.print(f"  - {note}", highlight=False)


def _said(run: Run) -> str:
    if run.waiting_for:
        return f"pending {run.waiting_for}"
    return str(run.escalation) if run.escalation else str(run.end)
