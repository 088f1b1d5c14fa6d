"""The `flowcase` command.

Each installed Flowcase distribution contributes a typer app through the `flowcase.cli` entry-point
group (`stack`, `events`, `processes`, …), so the command grows with what is installed and the CLI
depends on no service.
"""

from __future__ import annotations

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
        app.add_typer(sub_app, name=entry.name)
    return app


def main() -> None:
    build_app()()
