"""The `flowcase` command.

Each installed Flowcase distribution contributes a typer app through the `flowcase.cli` entry-point
group (`stack`, `events`, `processes`, …), so the command grows with what is installed and the CLI
depends on no service.
"""

from __future__ import annotations

import copy
from importlib.metadata import entry_points

import typer

ENTRY_POINT_GROUP = "flowcase.cli"


def build_app() -> typer.Typer:
    app = typer.Typer(
        help="Flowcase: workflow, case and governance on one event log.", no_args_is_help=True
    )
    for entry in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            sub_app = entry.load()
        except ImportError as exc:
            # One broken part must not take the commands of every other part down with it.
            typer.echo(f"warning: `flowcase {entry.name}` is unavailable: {exc}", err=True)
            continue
        mount(app, sub_app, entry.name)
    return app


def mount(app: typer.Typer, part: typer.Typer, name: str) -> None:
    """Mount a part as `flowcase NAME`. A part of one command and no callback is mounted as
    that command, as typer runs such an app on its own: `add_typer` would make it a group, and a
    group reads what follows an argument as a subcommand (`flowcase trace ID --json` failed)."""
    single = (
        part.registered_callback is None
        and not part.registered_groups
        and len(part.registered_commands) == 1
    )
    if not single:
        app.add_typer(part, name=name)
        return
    command = copy.copy(part.registered_commands[0])
    command.name = name
    app.registered_commands.append(command)


def main() -> None:
    build_app()()
