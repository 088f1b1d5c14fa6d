"""Authentication and roles for every Flowcase API.

Callers present a bearer JWT. In production it is validated against the configured OIDC issuer's
JWKS (`FLOWCASE_AUTH_JWKS_URL`); in development against a locally shared secret
(`FLOWCASE_AUTH_DEV_SECRET`, tokens minted by `flowcase token`). The token names the caller's
roles and teams; a service checks the role per endpoint and the team per object. An object
outside the caller's teams answers 404, not 403, so ids cannot be probed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from flowcase.runtime.problems import PROBLEM_JSON, PROBLEM_RESPONSES, ProblemError
from flowcase.runtime.settings import AuthSettings

# Where the local stack keeps its development secret, under FLOWCASE_HOME (default `.flowcase`).
DEV_SECRET_FILE = Path("auth") / "dev-secret"


class Role(StrEnum):
    REQUESTER = "requester"  # a person submitting and following their own requests
    CLIENT = "client"  # an upstream system doing the same
    AGENT = "agent"  # works the cases of their teams
    SUPERVISOR = "supervisor"  # approvals and overrides for their teams
    OPS_LEADER = "ops_leader"  # reads governance
    ADMIN = "admin"  # everything


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[Role]
    teams: frozenset[str]
    # The token's other roles: the organisation's own (`cfo`, `finance-director`), which process
    # definitions name as approvers; the platform gives them no other meaning.
    business_roles: frozenset[str] = frozenset()

    def has(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles.intersection(roles))

    def sees_team(self, team: str | None) -> bool:
        """Whether an object of this team is visible: admins see all, others their teams."""
        return Role.ADMIN in self.roles or (team is not None and team in self.teams)


_BEARER = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A JWT of the OIDC issuer (production) or from `flowcase token` (development).",
)

# The answers of every authenticated endpoint, for OpenAPI `responses=`.
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {**PROBLEM_RESPONSES[status], "content": {PROBLEM_JSON: {"example": example}}}
    for status, example in (
        (
            401,
            {
                "type": "about:blank",
                "title": "Unauthorized",
                "status": 401,
                "detail": "a bearer token is required",
            },
        ),
        (
            403,
            {
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
                "detail": "this needs one of the roles: supervisor",
            },
        ),
    )
}


NUMERIC_DATES = ("exp", "nbf", "iat")
PLATFORM_ROLES = frozenset(str(r) for r in Role)


class Authenticator:
    """A FastAPI dependency: the caller's Principal from the bearer token, or 401.

    With `cookie`, a request without an Authorization header may carry the token in that cookie
    instead (a browser page such as the governance dashboard; set HttpOnly and SameSite=Strict).
    """

    def __init__(self, settings: AuthSettings, *, cookie: str | None = None) -> None:
        if settings.jwks_url is None and settings.dev_secret is None:
            raise ValueError("set FLOWCASE_AUTH_JWKS_URL (production) or FLOWCASE_AUTH_DEV_SECRET")
        self.settings = settings
        self.cookie = cookie
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    def principal(self, token: str) -> Principal:
        s = self.settings
        if self._jwks is not None:
            key: Any = self._jwks.get_signing_key_from_jwt(token).key
            algorithms = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
        else:
            assert s.dev_secret is not None
            key, algorithms = s.dev_secret.get_secret_value(), ["HS256"]
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=s.audience,
            issuer=s.issuer,
            leeway=s.leeway_seconds,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
        for name in NUMERIC_DATES:
            value = claims.get(name)
            # PyJWT reads "9999999999" as a number; RFC 7519 says a NumericDate is a JSON number.
            if name in claims and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise jwt.InvalidTokenError(f"the {name} claim must be a number")
        named = [str(r) for r in _as_list(claims.get(s.roles_claim, []))]
        return Principal(
            subject=str(claims["sub"]),
            roles=frozenset(Role(r) for r in named if r in PLATFORM_ROLES),
            business_roles=frozenset(r for r in named if r not in PLATFORM_ROLES),
            teams=frozenset(str(t) for t in _as_list(claims.get(s.teams_claim, []))),
        )

    async def __call__(
        self,
        request: Request,
        # Declared for OpenAPI (the bearer security scheme); the header is read below.
        _bearer: HTTPAuthorizationCredentials | None = Depends(_BEARER),
    ) -> Principal:
        header = request.headers.get("authorization")
        if header is None and self.cookie is not None and self.cookie in request.cookies:
            header = f"Bearer {request.cookies[self.cookie]}"
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("a bearer token is required", "invalid_request")
        return self.authenticate(token)

    def authenticate(self, token: str) -> Principal:
        """The token's Principal, or a 401 problem."""
        try:
            return self.principal(token.strip())
        except (jwt.PyJWTError, ValueError) as exc:
            raise _unauthorized(f"the token is not valid: {exc}", "invalid_token") from exc


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _unauthorized(detail: str, error: str) -> ProblemError:
    return ProblemError(
        401, "Unauthorized", detail, headers={"WWW-Authenticate": f'Bearer error="{error}"'}
    )


def requires(authenticator: Authenticator, *roles: Role) -> Callable[..., Any]:
    """A dependency that authenticates and demands one of the roles (admin always passes)."""

    async def dependency(principal: Principal = Depends(authenticator)) -> Principal:
        if not principal.has(*roles):
            raise ProblemError(
                403, "Forbidden", f"this needs one of the roles: {', '.join(sorted(roles))}"
            )
        return principal

    return dependency


def mint_token(
    settings: AuthSettings,
    *,
    subject: str,
    roles: Iterable[Role | str],
    teams: Iterable[str] = (),
    ttl: timedelta = timedelta(hours=8),
) -> str:
    """A development token signed with the local secret (never used with an OIDC issuer).
    `roles` are platform roles and, as strings, business roles (`cfo`)."""
    if settings.dev_secret is None:
        raise ValueError("minting needs FLOWCASE_AUTH_DEV_SECRET (development only)")
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": now,
        "exp": now + ttl,
        settings.roles_claim: [str(r) for r in roles],
        settings.teams_claim: list(teams),
    }
    return jwt.encode(claims, settings.dev_secret.get_secret_value(), algorithm="HS256")


def local_dev_secret(start: Path | None = None) -> str | None:
    """The local stack's development secret: under FLOWCASE_HOME if set, else in the nearest
    `.flowcase` folder from `start` (the working directory) upwards; None when there is none."""
    if home := os.environ.get("FLOWCASE_HOME"):
        candidates = [Path(home) / DEV_SECRET_FILE]
    else:
        here = (start or Path.cwd()).resolve()
        candidates = [folder / ".flowcase" / DEV_SECRET_FILE for folder in (here, *here.parents)]
    for path in candidates:
        if path.is_file():
            return path.read_text().strip() or None
    return None
