"""`flowcase stack …`: start, inspect and stop the local platform."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time

import typer
from rich.console import Console
from rich.table import Table

from flowcase.devstack import provision as provisioning
from flowcase.devstack.demo.cli import DASHBOARD, DemoTarget, already_seeded, seed_demo
from flowcase.devstack.processes import StackError, alive
from flowcase.devstack.services import ServiceProcess
from flowcase.devstack.stack import LocalStack

app = typer.Typer(
    help="The local platform: real Kafka (KRaft) and PostgreSQL, no Docker.", no_args_is_help=True
)
console = Console()


def _table(stack: LocalStack) -> Table:
    table = Table(title="Flowcase local stack", show_lines=False)
    table.add_column("part")
    table.add_column("where")
    table.add_column("state")
    table.add_column("restarts")
    table.add_row("Kafka (KRaft)", stack.kafka.bootstrap, "up" if stack.kafka.pid() else "down")
    table.add_row("PostgreSQL", stack.postgres.dsn, "up" if stack.postgres.running() else "down")
    for proc in [*stack.services, stack.sink]:
        table.add_row(f"{proc.service.name} service", f"{proc.service.url}/docs", *_state(proc))
    table.caption = f"logs: {stack.layout.logs}"
    return table


def _state(proc: ServiceProcess) -> tuple[str, str]:
    """Up, restarting (its supervisor waits out a backoff) or down; and its restarts, if any."""
    if proc.pid() is None:
        return "down", ""
    supervision = proc.supervision()
    if supervision is None:  # started without a supervisor, or it has yet to start the service
        return "up", ""
    state = "up" if supervision.pid is not None and alive(supervision.pid) else "restarting"
    if supervision.last_exit_code is None:
        return state, "0"
    return state, f"{supervision.restarts} ({supervision.last_exit()})"


@app.command()
def up(
    detach: bool = typer.Option(
        False, "--detach", "-d", help="Start in the background and return."
    ),
    services: bool = typer.Option(True, help="Start the installed Flowcase services too."),
    demo: bool = typer.Option(
        True, help="Seed the demo workload, once per stack (`flowcase demo seed` does it later)."
    ),
) -> None:
    """Start Kafka, PostgreSQL and the services; wait until each is healthy."""
    stack = LocalStack()
    t0 = time.monotonic()
    try:
        with console.status("starting PostgreSQL and Kafka…"):
            stack.start_infrastructure()
        if services and stack.services:
            with console.status("starting the services…"):
                stack.start_services()
    except StackError as exc:
        console.print(f"[red]cannot start:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(_table(stack))
    console.print(f"ready in {time.monotonic() - t0:.1f}s")
    if services and demo and stack.services:
        _seed_demo(stack)
    console.print(
        "every API but /healthz, /readyz and /metrics needs a bearer token: "
        "[bold]uv run flowcase token --role admin[/bold] mints a development one "
        "(the dashboard: open http://127.0.0.1:8004/?token=…)"
    )
    if detach:
        console.print("stop it with [bold]make down[/bold] (flowcase stack down)")
        return
    console.print("Ctrl-C stops the platform.")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopping.wait()
    with console.status("stopping…"):
        stack.stop()
    console.print("stopped.")


def _seed_demo(stack: LocalStack) -> None:
    """Seed the demo unless this stack was seeded before; a failure leaves the stack running."""
    t0 = time.monotonic()
    try:
        target = DemoTarget.of(stack)
        if earlier := already_seeded(target.home):
            console.print(f"demo: seeded on {earlier['seeded_at']}: {earlier['summary']}")
        else:
            report = asyncio.run(seed_demo(target))
            console.print(f"demo seeded in {time.monotonic() - t0:.1f}s: {report.summary()}")
    except Exception as exc:  # whatever went wrong, the platform stays up for the developer
        console.print(
            f"[yellow]demo seeding failed[/yellow] ({type(exc).__name__}: {exc}); the platform "
            "runs on. Retry with [bold]uv run flowcase demo seed[/bold]; logs in "
            f"{stack.layout.logs}"
        )
        return
    console.print(f"governance dashboard: [bold]{DASHBOARD}[/bold]")


@app.command()
def down() -> None:
    """Stop every part of the local stack that runs."""
    stack = LocalStack()
    with console.status("stopping…"):
        stack.stop()
    console.print("stopped.")


@app.command()
def status() -> None:
    """Show what runs and where."""
    console.print(_table(LocalStack()))


@app.command()
def provision() -> None:
    """Create the platform's topics and each service's database where they are missing.

    Reads FLOWCASE_KAFKA_* and FLOWCASE_PROVISION_* (admin database URL, partitions,
    replication factor): the one-shot init of docker-compose and of a cluster.
    """
    provisioning.main()
