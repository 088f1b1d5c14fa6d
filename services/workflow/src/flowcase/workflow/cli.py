"""`flowcase processes …`: check process definitions before they are published, what a
proposed one would do to real history (`what-if`), and move running instances to another
version (`migrate`, through the running service's API)."""

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
import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from flowcase.events import Envelope, EventDecodeError, decode_all
from flowcase.events.settings import DatabaseSettings
from flowcase.eventstore import postgres_env
from flowcase.runtime.command_token import command_token
from flowcase.runtime.progress import progress_bar
from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.definition import ProcessDefinition
from flowcase.workflow.definition_files import (
    InvalidDefinition,
    check_folder,
    load_definition,
    shipped_folder,
)
from flowcase.workflow.migration import InvalidPlan, MigrationPlan, MoveOutcome, read_plan
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


@app.command()
def migrate(
    request_type: str = typer.Argument(..., help="The process's request type."),
    from_version: int = typer.Option(..., "--from", min=1, help="The version to move from."),
    to_version: int = typer.Option(
        ..., "--to", min=1, help="The version to move to: published on the service already."
    ),
    reason: str = typer.Option(..., help="Why: kept in each moved instance's history."),
    plan_file: Path | None = typer.Option(
        None,
        "--plan",
        exists=True,
        dir_okay=False,
        help="The plan (YAML): renamed steps, `timers: carry|restart`. Without it, each "
        "instance goes on at the step of the same name, its clocks carried.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Say what would move and why not; change nothing."
    ),
    workflow: str = typer.Option(
        "http://127.0.0.1:8002", envvar="FLOWCASE_WORKFLOW_URL", help="Workflow's base URL."
    ),
    page: int = typer.Option(500, min=1, max=5000, help="Instances per call to the service."),
    as_json: bool = typer.Option(False, "--json", help="Every instance's outcome as JSON."),
) -> None:
    """Move the running instances of REQUEST_TYPE from one version of its definition to
    another, through the workflow service (admin only: FLOWCASE_TOKEN, or the local stack's
    development secret). Each instance moves on its own: run it again after an interruption
    and it moves the rest. Exits 1 when an instance cannot move."""
    try:
        plan = (
            read_plan(plan_file.read_text(encoding="utf-8"), str(plan_file))
            if plan_file
            else MigrationPlan()
        )
    except InvalidPlan as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    token = command_token("flowcase-migrate")
    asked: dict[str, Any] = {
        "request_type": request_type,
        "from_version": from_version,
        "to_version": to_version,
        "plan": plan.model_dump(mode="json"),
        "reason": reason,
        "dry_run": dry_run,
        "limit": page,
    }
    moves: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    verb = "rehearsing" if dry_run else "moving"
    with (
        httpx.Client(base_url=workflow.rstrip("/"), headers=headers, timeout=600) as client,
        progress_bar(stderr) as progress,
    ):
        task = progress.add_task(f"{verb} {request_type} v{from_version} -> v{to_version}")
        while True:
            report = _post(client, "/v1/migrations", asked)
            if asked.get("migration_id") is None:
                progress.update(task, total=report["waiting"])
            asked.update(migration_id=report["migration_id"], after=report["next"])
            moves += report["moves"]
            progress.advance(task, len(report["moves"]))
            if report["next"] is None:
                break
    if as_json:
        typer.echo(json.dumps({"migration_id": asked.get("migration_id"), "moves": moves}))
    else:
        _show_moves(moves, dry_run, to_version)
    if any(move["outcome"] == MoveOutcome.CANNOT_MOVE for move in moves):
        raise typer.Exit(1)


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        response = client.post(path, json=body)
    except httpx.HTTPError as exc:
        typer.echo(f"the workflow service at {client.base_url} did not answer: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        typer.echo(f"HTTP {response.status_code}: {detail}", err=True)
        raise typer.Exit(1)
    answer: dict[str, Any] = response.json()
    return answer


def _show_moves(moves: list[dict[str, Any]], dry_run: bool, to_version: int) -> None:
    console = Console()
    if not moves:
        console.print("no instance waits on that version", highlight=False)
        return
    counted: dict[str, int] = {}
    for move in moves:
        counted[move["outcome"]] = counted.get(move["outcome"], 0) + 1
    said = {
        MoveOutcome.MOVED: f"moved to v{to_version}",
        MoveOutcome.CAN_MOVE: f"can move to v{to_version}",
        MoveOutcome.ALREADY_MOVED: f"on v{to_version} already",
        MoveOutcome.CANNOT_MOVE: "cannot move",
    }
    for outcome, label in said.items():
        if counted.get(outcome):
            console.print(f"{counted[outcome]} {label}", highlight=False)
    landed: dict[str, int] = {}
    for move in moves:
        if move["now"]:
            landed[move["now"]] = landed.get(move["now"], 0) + 1
    for now, count in sorted(landed.items()):
        console.print(f"  {count} {'would then' if dry_run else 'now'}: {now}", highlight=False)
    for move in moves:
        if move["outcome"] == MoveOutcome.CANNOT_MOVE:
            console.print(
                f"  {move['request_id']} (at {move['step']}): {move['reason']}", highlight=False
            )
