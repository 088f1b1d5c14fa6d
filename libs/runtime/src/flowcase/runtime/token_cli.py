"""`flowcase token`: mint a development bearer token."""

from __future__ import annotations

from datetime import timedelta

import typer
from pydantic import SecretStr

from flowcase.runtime.auth import Role, local_dev_secret, mint_token
from flowcase.runtime.settings import AuthSettings

app = typer.Typer()


@app.command(
    help="Mint a development bearer token, signed with FLOWCASE_AUTH_DEV_SECRET or, when that is "
    "unset, with the local stack's secret (.flowcase/auth/dev-secret, made by `make up`)."
)
def token(
    role: list[Role] = typer.Option(..., "--role", help="A role of the caller; repeat for more."),
    business_role: list[str] = typer.Option(
        [],
        "--business-role",
        help="A role of the organisation a process definition names as approver (cfo, "
        "finance-director); repeat for more.",
    ),
    team: list[str] = typer.Option([], "--team", help="A team of the caller; repeat for more."),
    subject: str = typer.Option("dev-user", "--subject", help="Who the token names."),
    hours: float = typer.Option(8.0, help="Hours until the token expires."),
) -> None:
    settings = AuthSettings()
    if settings.dev_secret is None and (secret := local_dev_secret()) is not None:
        settings = settings.model_copy(update={"dev_secret": SecretStr(secret)})
    try:
        minted = mint_token(
            settings,
            subject=subject,
            roles=[*role, *business_role],
            teams=team,
            ttl=timedelta(hours=hours),
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(minted)
