"""`flowcase demo seed`: the demo workload on a running local stack (what `make up` runs)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import typer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from flowcase.devstack.demo.drift_history import DAILY_VOLUME, drift_history, write_csv
from flowcase.devstack.demo.seeder import Credentials, Seeder, SeedReport, import_history
from flowcase.devstack.demo.workload import plan_workload, scaled_counts
from flowcase.devstack.dev_secret import dev_secret
from flowcase.devstack.stack import LocalStack
from flowcase.runtime.settings import AuthSettings

app = typer.Typer(help="The demo workload of the local stack.", no_args_is_help=True)
console = Console()
MARKER = Path("demo") / "seeded.json"
DASHBOARD = "http://127.0.0.1:8004/"


@app.callback()
def demo() -> None:
    """The demo workload: live requests through the APIs and an imported history."""


@dataclass(frozen=True)
class DemoTarget:
    """Where the demo goes: the three APIs, governance's database, and where to keep files."""

    intake_url: str
    workflow_url: str
    case_url: str
    governance_database_url: str
    home: Path
    auth: AuthSettings

    @classmethod
    def of(cls, stack: LocalStack) -> DemoTarget:
        urls = {proc.service.name: proc.service.url for proc in stack.services}
        missing = {"intake", "workflow", "case", "governance"} - urls.keys()
        if missing:
            raise typer.BadParameter(f"the demo needs the {', '.join(sorted(missing))} service")
        settings = AuthSettings()
        if settings.dev_secret is None:
            settings = settings.model_copy(
                update={"dev_secret": SecretStr(dev_secret(stack.layout.home))}
            )
        return cls(
            urls["intake"],
            urls["workflow"],
            urls["case"],
            stack.postgres.database_url("flowcase_governance"),
            stack.layout.home,
            settings,
        )


def already_seeded(home: Path) -> dict[str, object] | None:
    marker = home / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


async def seed_demo(
    target: DemoTarget, *, seed: int = 7, scale: float = 1.0, quiet: bool = False
) -> SeedReport:
    """Seed the stack at `target` and mark it seeded (in its home)."""
    now = datetime.now(UTC)
    timeout = httpx.Timeout(15.0)
    async with (
        httpx.AsyncClient(base_url=target.intake_url, timeout=timeout) as intake,
        httpx.AsyncClient(base_url=target.workflow_url, timeout=timeout) as workflow,
        httpx.AsyncClient(base_url=target.case_url, timeout=timeout) as case,
    ):
        seeder = Seeder(
            intake=intake, workflow=workflow, case=case, credentials=Credentials(target.auth)
        )
        report = await seed_through(
            seeder,
            governance_database_url=target.governance_database_url,
            folder=target.home / "demo",
            now=now,
            seed=seed,
            scale=scale,
            quiet=quiet,
        )
    marker = target.home / MARKER
    marker.write_text(
        json.dumps({"seeded_at": now.isoformat(), "seed": seed, "summary": report.summary()})
    )
    return report


async def seed_through(
    seeder: Seeder,
    *,
    governance_database_url: str,
    folder: Path,
    now: datetime,
    seed: int = 7,
    scale: float = 1.0,
    quiet: bool = False,
) -> SeedReport:
    """Plan, submit and follow the live requests (with a progress bar), then write the HR
    history into `folder` and import it into governance's database."""
    # Invoices stay over the advisor's minimum of 30 and HR matters at one day of the history.
    counts = scaled_counts(scale, minimum={"invoice_approval": 30, "hr_matter": DAILY_VOLUME})
    plan = plan_workload(now, seed=seed, counts=counts)
    report = SeedReport()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]demo[/bold] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[figures]}"),
        console=console,
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task("requests", total=len(plan), figures="")

        def done(_planned: object, _status: str) -> None:
            progress.update(
                task,
                advance=1,
                figures=f"{report.approved} approved · {report.denied} denied · "
                f"{report.cases_resolved} cases resolved · {report.cases_open} open",
            )

        await seeder.seed(plan, report, done)
        progress.update(task, description="importing the HR history")
        report.history_events = await asyncio.to_thread(
            _import_history, folder, now, seed, governance_database_url
        )
    return report


def _import_history(folder: Path, now: datetime, seed: int, database_url: str) -> int:
    """The history up to today's midnight (UTC), where the live demo starts, written and
    imported; the number of events imported."""
    folder.mkdir(parents=True, exist_ok=True)
    history = folder / "hr-matters-history.csv"
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    write_csv(drift_history(midnight, seed=seed), history)
    return import_history(history, database_url)


@app.command()
def seed(
    seed: int = typer.Option(
        7, help="Seed of the generated workload (the same seed, the same ids)."
    ),
    scale: float = typer.Option(1.0, min=0.05, help="Multiplies the number of requests per type."),
    force: bool = typer.Option(
        False, "--force", help="Seed even if this stack was seeded before (nothing is doubled)."
    ),
) -> None:
    """Seed the running stack: requests, approvals and case work through its APIs, and an HR
    history whose resolution time drifts, through the governance import.

    A stack seeded before is left alone (the mark is in its home, .flowcase/demo/); with
    --force it is seeded again and nothing doubles: the same submission ids are the same
    requests, decided approvals and worked cases are skipped, the history imports idempotently.
    """
    stack = LocalStack()
    target = DemoTarget.of(stack)
    if (earlier := already_seeded(target.home)) and not force:
        console.print(f"already seeded on {earlier['seeded_at']}: {earlier['summary']} (--force)")
        return
    report = asyncio.run(seed_demo(target, seed=seed, scale=scale))
    console.print(f"demo: {report.summary()}")
    console.print(f"dashboard: {DASHBOARD}")
