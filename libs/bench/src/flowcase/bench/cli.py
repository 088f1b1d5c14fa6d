"""`flowcase bench`: the platform driven open-loop next to raw Kafka and PostgreSQL baselines."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from flowcase.bench.mix import Mix
from flowcase.bench.run import VIAS, BenchSettings, run_bench
from flowcase.bench.terminal import print_summary
from flowcase.devstack.dedicated import SERVICE_NAMES

app = typer.Typer()
console = Console()


class RichProgress:
    """One bar per phase: the requests offered in a rate step, those a drain has published or
    brought to their outcome, or a spinner-like bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self._total = 1.0

    def phase(self, description: str, total: float | None = None) -> None:
        if self._task is not None:  # the previous phase is over
            self._progress.update(self._task, total=self._total, completed=self._total)
        self._total = total or 1.0
        self._task = self._progress.add_task(description, total=total)

    def advance(self, amount: float = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, amount)


@app.command(short_help="Benchmark the whole platform on a dedicated stack.")
def bench(
    rate: list[float] = typer.Option(
        [100.0], "--rate", help="Requests per second offered; repeat to step through rates."
    ),
    seconds: float = typer.Option(20.0, help="How long each rate is held."),
    via: list[str] = typer.Option(
        ["http"], "--via", help="http (intake's API) or raw (intake's raw topic); repeat for both."
    ),
    mix: str = typer.Option(
        "routine=80,approval=15,escalation=5", help="Shares of each kind of request."
    ),
    seed: int = typer.Option(7, help="The seed of the mix and of the payloads."),
    replicas: int = typer.Option(1, min=1, help="Processes of each replicated service."),
    replicated: list[str] = typer.Option(
        ["workflow"], "--replicated", help="A service --replicas applies to (repeatable)."
    ),
    profile: str | None = typer.Option(
        None, help="Run py-spy on this service during the platform phase."
    ),
    baseline_seconds: float = typer.Option(5.0, help="How long each baseline runs."),
    pg_writers: int = typer.Option(4, help="Connections appending in the PostgreSQL baseline."),
    pg_batch: int = typer.Option(100, help="Rows per transaction in the batched baseline."),
    drain_seconds: float = typer.Option(
        60.0, help="The most a step waits after its window for the outcomes still due."
    ),
    drain: int = typer.Option(
        0,
        min=0,
        help="After the steps, publish this many requests at once on the raw topic and time "
        "them to their outcomes (the saturation mode; 0: none).",
    ),
    drain_stall_seconds: float = typer.Option(
        60.0, help="The drain gives up after this long without a request reaching its outcome."
    ),
    idle_seconds: float = typer.Option(
        0.0,
        min=0,
        help="After the warm-up and the baselines, offer nothing for this long and sample each "
        "process's CPU (what an idle platform costs; 0: no idle phase).",
    ),
    output: Path | None = typer.Option(
        None, help="Folder of the results (default: benchmarks/results of the checkout)."
    ),
) -> None:
    """Start a dedicated stack, measure the baselines and each rate, write the results JSON."""
    for name in via:
        if name not in VIAS:
            raise typer.BadParameter(f"--via is one of {VIAS}, not {name!r}")
    for name in [*replicated, *([profile] if profile else [])]:
        if name not in SERVICE_NAMES:
            raise typer.BadParameter(f"a service is one of {SERVICE_NAMES}, not {name!r}")
    settings = BenchSettings(
        rates=tuple(rate),
        seconds=seconds,
        vias=tuple(via),
        mix=Mix.parse(mix),
        seed=seed,
        replicas=replicas,
        replicated=tuple(replicated),
        profile=profile,
        baseline_seconds=baseline_seconds,
        pg_writers=pg_writers,
        pg_batch=pg_batch,
        drain_seconds=drain_seconds,
        drain=drain,
        drain_stall_seconds=drain_stall_seconds,
        idle_seconds=idle_seconds,
        output=output,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        document, path = asyncio.run(run_bench(settings, RichProgress(progress)))
    print_summary(document, console)
    console.print(f"wrote {path}")
