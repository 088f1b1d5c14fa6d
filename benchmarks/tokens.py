"""Bearer tokens for the benchmarks: the services they build check tokens like any deployment.

One development secret per benchmark run; the services are built with it (`auth=AUTH`).
"""

from __future__ import annotations

import secrets

from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings

AUTH = AuthSettings(dev_secret=secrets.token_urlsafe(32))


def token(*roles: Role, teams: tuple[str, ...] = (), subject: str = "benchmark") -> str:
    return mint_token(AUTH, subject=subject, roles=roles, teams=teams)


def bearer(*roles: Role, teams: tuple[str, ...] = (), subject: str = "benchmark") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(*roles, teams=teams, subject=subject)}"}
