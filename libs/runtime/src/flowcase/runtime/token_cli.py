"""`flowcase token`: mint a development bearer token."""

from __future__ import annotations

from datetime import timedelta

import typer

from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

app = typer.Typer(help="Mint a development bearer token (signed with FLOWCASE_AUTH_DEV_SECRET).")


@app.callback(invoke_without_command=True)
def token(
    role: list[Role] = typer.Option(..., "--role", help="A role of the caller; repeat for more."),
    team: list[str] = typer.Option([], "--team", help="A team of the caller; repeat for more."),
    subject: str = typer.Option("dev-user", "--subject", help="Who the token names."),
    hours: float = typer.Option(8.0, help="Hours until the token expires."),
) -> None:
    try:
        minted = mint_token(
            AuthSettings(), subject=subject, roles=role, teams=team, ttl=timedelta(hours=hours)
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(minted)
