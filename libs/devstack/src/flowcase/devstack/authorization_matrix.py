"""The authorization matrix of an API: each endpoint by role by own or other object.

A service's test names, for each endpoint ("METHOD /path"), who may call it and whether it names
an object of a team or an owner; `cases` expands that into one case per endpoint, role (or no
token) and object, and `routes` lists what the app serves, so a new endpoint without a rule fails
the test that compares the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from fastapi import FastAPI

from flowcase.runtime.auth import Role

# Served to anyone: the probes, and /metrics for Prometheus' scrapes.
UNAUTHENTICATED = frozenset({"GET /healthz", "GET /readyz", "GET /metrics"})


class Scope(StrEnum):
    OWN = "own"  # an object of the caller's teams (or their own request)
    OTHER = "other"  # another team's object (or another's request)


class Expect(StrEnum):
    UNAUTHENTICATED = "401"
    FORBIDDEN = "403"
    HIDDEN = "404"
    ALLOWED = "allowed"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]  # who may call it; admin always may
    scoped: bool = False  # names an object a caller may not see (of another team or owner)
    # What an allowed call may answer (2xx, or the 4xx of its own validation and state rules).
    allowed: frozenset[int] = field(default=frozenset({200, 201, 202}))

    def expect(self, role: Role | None, scope: Scope) -> Expect:
        if role is None:
            return Expect.UNAUTHENTICATED
        if role is not Role.ADMIN and role not in self.roles:
            return Expect.FORBIDDEN
        if self.scoped and scope is Scope.OTHER and role is not Role.ADMIN:
            return Expect.HIDDEN
        return Expect.ALLOWED


def rule(*roles: Role, scoped: bool = False, allowed: set[int] | None = None) -> Rule:
    """`rule(Role.AGENT, Role.SUPERVISOR, scoped=True, allowed={200, 409})`."""
    return Rule(frozenset(roles), scoped, frozenset(allowed or {200, 201, 202}))


def routes(app: FastAPI) -> set[str]:
    """Every "METHOD /path" the app's OpenAPI document lists that needs a token."""
    served = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    return served - UNAUTHENTICATED


def cases(rules: dict[str, Rule]) -> list[tuple[str, Role | None, Scope]]:
    """Each endpoint without a token, and with each role on an own object (and, for scoped
    endpoints, on another's)."""
    found: list[tuple[str, Role | None, Scope]] = []
    for endpoint, endpoint_rule in sorted(rules.items()):
        found.append((endpoint, None, Scope.OWN))
        for role in Role:
            found.append((endpoint, role, Scope.OWN))
            if endpoint_rule.scoped:
                found.append((endpoint, role, Scope.OTHER))
    return found
