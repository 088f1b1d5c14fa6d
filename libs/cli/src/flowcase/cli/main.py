"""The `flowcase` command.

Each installed Flowcase distribution contributes a typer app through the `flowcase.cli` entry-point
group (`stack`, `events`, `processes`, …), so the command grows with what is installed and the CLI
depends on no service. A part is imported only when its name is given (`flowcase governance
import` loads governance alone, not the workflow's rule engine or the benchmarks), so a command
starts in the time its own part takes; `flowcase --help` loads them all to list them.
"""

from __future__ import annotations

import copy
from importlib.metadata import EntryPoint, entry_points

import typer

# typer carries its own click: the group a Typer app becomes is made of these.
from typer._click.core import Command, Context
from typer.core import TyperGroup

ENTRY_POINT_GROUP = "flowcase.cli"


class _Parts(TyperGroup):
    """The parts as subcommands, each loaded from its entry point when first named."""

    def _entries(self) -> dict[str, EntryPoint]:
        return {entry.name: entry for entry in entry_points(group=ENTRY_POINT_GROUP)}

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted(self._entries())

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name not in self.commands:
            entry = self._entries().get(cmd_name)
            if entry is None:
                return None
            try:
                part = entry.load()
            except ImportError as exc:
                # One broken part must not take the commands of every other part down with it.
                typer.echo(f"warning: `flowcase {cmd_name}` is unavailable: {exc}", err=True)
                return None
            holder = typer.Typer()
            mount(holder, part, cmd_name)
            self.add_command(typer.main.get_group(holder).commands[cmd_name], cmd_name)
        return self.commands[cmd_name]


def build_app() -> typer.Typer:
    app = typer.Typer(cls=_Parts, no_args_is_help=True)

    # A callback makes the app a group of the parts (typer needs it where no command is declared).
    @app.callback()
    def flowcase() -> None:
        """Flowcase: workflow, case and governance on one event log."""

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
