"""Development tokens for tests: a role, some teams and a subject, as a token or as headers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flowcase.runtime.auth import PLATFORM_ROLES, Role, mint_token
from flowcase.runtime.settings import AuthSettings


@dataclass(frozen=True)
class Tokens:
    settings: AuthSettings

    def token(
        self, *roles: Role | str, teams: Iterable[str] = (), subject: str | None = None
    ) -> str:
        """Platform roles (`Role`), and business roles as other strings (`"cfo"`)."""
        named = [str(r) for r in roles]
        return mint_token(
            self.settings,
            subject=subject or f"test-{'-'.join(named) or 'nobody'}",
            roles=[Role(r) if r in PLATFORM_ROLES else r for r in named],
            teams=teams,
        )

    def headers(
        self, *roles: Role | str, teams: Iterable[str] = (), subject: str | None = None
    ) -> dict[str, str]:
        """`{"Authorization": "Bearer …"}` for a caller with these roles and teams."""
        return {"Authorization": f"Bearer {self.token(*roles, teams=teams, subject=subject)}"}

    def admin(self) -> dict[str, str]:
        return self.headers(Role.ADMIN, subject="test-admin")
