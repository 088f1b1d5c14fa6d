"""`flowcase processes …`: check process definitions before they are published."""

from __future__ import annotations

from pathlib import Path

import typer

from flowcase.workflow.definition_files import check_folder, shipped_folder

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
