"""Who may call each case endpoint: every endpoint by role, on a case of the caller's team and on
another team's.

Agents and supervisors work the cases of their teams; assignments and overrides are supervisors';
admins do everything; requesters, clients and ops leaders nothing here. Another team's case is
404, never 403. Commands are sent based on a version the case never had, so an allowed one is
refused as stale (409) and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from flowcase.case.composition import build_service
from flowcase.case.settings import CaseSettings
from flowcase.devstack.authorization_matrix import Expect, Rule, Scope, cases, routes, rule
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

TEAM, OTHER_TEAM = "matrix-team", "other-team"
WORKERS = (Role.AGENT, Role.SUPERVISOR)
STALE = {409}

# The body of each command (valid, based on a version no case has) and who may send it.
COMMANDS: dict[str, tuple[tuple[Role, ...], dict[str, Any]]] = {
    "assignments": ((Role.SUPERVISOR,), {"team": TEAM}),
    "claims": (WORKERS, {}),
    "notes": (WORKERS, {"text": "x"}),
    "communications": (WORKERS, {"direction": "inbound", "channel": "email", "summary": "x"}),
    "evidence": (WORKERS, {"reference": "s3://x", "sha256": "0" * 64}),
    "tasks": (WORKERS, {"title": "x"}),
    "tasks/{task_id}/completion": (WORKERS, {"result": "x"}),
    "milestones": (WORKERS, {"milestone": "x"}),
    "clock/pause": (WORKERS, {"reason": "x"}),
    "clock/resume": (WORKERS, {}),
    "status-changes": (WORKERS, {"to_status": "investigating"}),
    "decisions": (WORKERS, {"decision": "x", "gap_acknowledged": True}),
    "overrides": ((Role.SUPERVISOR,), {"target": "sla", "gap_acknowledged": True}),
    "resolution": (WORKERS, {"outcome_code": "x", "gap_acknowledged": True}),
}

RULES: dict[str, Rule] = {
    "POST /v1/cases": rule(*WORKERS, allowed={201}),
    "GET /v1/cases": rule(*WORKERS),
    "GET /v1/cases/{case_id}": rule(*WORKERS, scoped=True),
    "GET /v1/cases/{case_id}/history": rule(*WORKERS, scoped=True),
    "GET /v1/cases/{case_id}/audit": rule(*WORKERS, scoped=True),
    "GET /v1/cases/{case_id}/verify": rule(*WORKERS, scoped=True),
    **{
        f"POST /v1/cases/{{case_id}}/{path}": rule(*roles, scoped=True, allowed=STALE)
        for path, (roles, _) in COMMANDS.items()
    },
}

Call = Callable[[httpx.AsyncClient, dict[str, str], UUID], Awaitable[httpx.Response]]


def _call(endpoint: str) -> Call:
    method, _, path = endpoint.partition(" ")
    command = path.removeprefix("/v1/cases/{case_id}/")
    if method == "POST" and command in COMMANDS:
        body = {**COMMANDS[command][1], "expected_version": 999}
        return lambda c, h, case_id: c.post(
            path.format(case_id=case_id, task_id="t-1"), json=body, headers=h
        )
    if method == "POST":
        return lambda c, h, _: c.post(path, json={"title": "Walk-in"}, headers=h)
    return lambda c, h, case_id: c.get(path.format(case_id=case_id), headers=h)


class Cases:
    def __init__(self, app: FastAPI, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.ids: dict[Scope, UUID] = {}


@pytest.fixture(scope="module")
async def case_api(
    module_kafka_settings: KafkaSettings,
    module_database_url: str,
    auth_settings: AuthSettings,
    tokens: Tokens,
) -> AsyncIterator[Cases]:
    """One case service for the module, with a case of TEAM and one of OTHER_TEAM."""
    assembly = await build_service(
        kafka=module_kafka_settings,
        database=DatabaseSettings(url=module_database_url),
        http=HttpSettings(),
        auth=auth_settings,
        settings=CaseSettings(),
    )
    transport = httpx.ASGITransport(app=assembly.app)
    async with (
        assembly.running(),
        httpx.AsyncClient(
            transport=transport, base_url="http://case", headers=tokens.admin()
        ) as client,
    ):
        found = Cases(assembly.app, client)
        for scope, team in ((Scope.OWN, TEAM), (Scope.OTHER, OTHER_TEAM)):
            opened = await client.post("/v1/cases", json={"title": f"a case of {team}"})
            case_id = UUID(opened.json()["case_id"])
            assigned = await client.post(
                f"/v1/cases/{case_id}/assignments", json={"team": team, "expected_version": 1}
            )
            assert assigned.status_code == 200, assigned.text
            found.ids[scope] = case_id
        yield found


async def test_every_endpoint_has_a_rule(case_api: Cases) -> None:
    assert routes(case_api.app) == set(RULES)


@pytest.mark.parametrize(("endpoint", "role", "scope"), cases(RULES))
async def test_who_may_call_what(
    case_api: Cases, tokens: Tokens, endpoint: str, role: Role | None, scope: Scope
) -> None:
    headers = {} if role is None else tokens.headers(role, teams=[TEAM], subject=f"m-{role}")
    # Without a token, the client's admin header must not be sent.
    headers.setdefault("Authorization", "")
    response = await _call(endpoint)(case_api.client, headers, case_api.ids[scope])
    expected = RULES[endpoint].expect(role, scope)
    if expected is Expect.ALLOWED:
        assert response.status_code in RULES[endpoint].allowed, response.text
    else:
        assert response.status_code == int(expected), response.text


async def test_a_search_lists_only_the_callers_teams_cases(case_api: Cases, tokens: Tokens) -> None:
    agent = tokens.headers(Role.AGENT, teams=[TEAM])
    listed = (await case_api.client.get("/v1/cases", headers=agent)).json()["items"]
    assert {item["team"] for item in listed} <= {TEAM}
    assert str(case_api.ids[Scope.OTHER]) not in {item["case_id"] for item in listed}


async def test_the_actor_of_a_command_is_the_tokens_subject(
    case_api: Cases, tokens: Tokens
) -> None:
    case_id = case_api.ids[Scope.OWN]
    version = (await case_api.client.get(f"/v1/cases/{case_id}")).json()["version"]
    noted = await case_api.client.post(
        f"/v1/cases/{case_id}/notes",
        json={"text": "seen", "expected_version": version},
        headers=tokens.headers(Role.AGENT, teams=[TEAM], subject="agent-ana"),
    )
    assert noted.status_code == 200, noted.text
    history = (await case_api.client.get(f"/v1/cases/{case_id}/history")).json()["events"]
    assert history[-1]["actor"] == "agent-ana"
