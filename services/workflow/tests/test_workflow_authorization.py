"""Who may call each workflow endpoint: every endpoint by role, on an instance routed to the
caller's team and on one routed to another team.

Agents and supervisors read the instances of their teams; supervisors decide approvals and
override; every caller reads the definitions; ops leaders ask what a proposed definition would
do (a what-if); only admins migrate instances; admins do everything. Another team's instance is
404, never 403. Decisions and overrides name a step the instance is not at, so an allowed one is
refused (409) and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from flowcase.devstack.authorization_matrix import Expect, Rule, Scope, cases, routes, rule
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings
from flowcase.workflow.composition import WorkflowAssembly, build_service
from flowcase.workflow.definition_files import shipped_folder
from flowcase.workflow.settings import WorkflowSettings

# invoice_approval is routed to accounts-payable; software_access to it-service-desk.
TEAM = "accounts-payable"
READERS = (Role.AGENT, Role.SUPERVISOR)

RULES: dict[str, Rule] = {
    "GET /v1/instances": rule(*READERS),
    "GET /v1/instances/{request_id}": rule(*READERS, scoped=True),
    "POST /v1/instances/{request_id}/approvals/{step}": rule(
        Role.SUPERVISOR, scoped=True, allowed={409}
    ),
    "POST /v1/instances/{request_id}/overrides": rule(Role.SUPERVISOR, scoped=True, allowed={409}),
    "GET /v1/definitions": rule(*Role),
    "GET /v1/definitions/{request_type}/versions/{version}": rule(*Role),
    "POST /v1/what-if": rule(Role.OPS_LEADER),
    "POST /v1/migrations": rule(allowed={422}),
}

PROPOSAL = (
    (shipped_folder() / "invoice_approval.yaml").read_text().replace("version: 1", "version: 2")
)

Call = Callable[[httpx.AsyncClient, dict[str, str], UUID], Awaitable[httpx.Response]]

CALLS: dict[str, Call] = {
    "GET /v1/instances": lambda c, h, _: c.get("/v1/instances", headers=h),
    "GET /v1/instances/{request_id}": lambda c, h, rid: c.get(f"/v1/instances/{rid}", headers=h),
    "POST /v1/instances/{request_id}/approvals/{step}": lambda c, h, rid: c.post(
        f"/v1/instances/{rid}/approvals/not-a-step", json={"decision": "approved"}, headers=h
    ),
    "POST /v1/instances/{request_id}/overrides": lambda c, h, rid: c.post(
        f"/v1/instances/{rid}/overrides",
        json={"override": "skip_step", "step": "not-a-step", "reason": "matrix"},
        headers=h,
    ),
    "GET /v1/definitions": lambda c, h, _: c.get("/v1/definitions", headers=h),
    "GET /v1/definitions/{request_type}/versions/{version}": lambda c, h, _: c.get(
        "/v1/definitions/invoice_approval/versions/1", headers=h
    ),
    # A period with no request in it: the answer is an empty comparison, quickly.
    "POST /v1/what-if": lambda c, h, _: c.post(
        "/v1/what-if",
        json={"definition": PROPOSAL, "since": "2999-01-01T00:00:00Z"},
        headers=h,
    ),
    # A dry run from a version to itself: refused as moving nothing, and nothing changes.
    "POST /v1/migrations": lambda c, h, _: c.post(
        "/v1/migrations",
        json={
            "request_type": "invoice_approval",
            "from_version": 1,
            "to_version": 1,
            "reason": "matrix",
            "dry_run": True,
        },
        headers=h,
    ),
}


class Instances:
    def __init__(self, service: WorkflowAssembly, client: httpx.AsyncClient) -> None:
        self.service = service
        self.client = client
        self.ids: dict[Scope, UUID] = {}


@pytest.fixture(scope="module")
async def workflow_api(
    module_kafka: KafkaSettings,
    module_database: DatabaseSettings,
    far_side: Any,
    intake: Any,
    workflow_events: Any,
    auth_settings: AuthSettings,
) -> AsyncIterator[Instances]:
    """One workflow service for the module, with an instance routed to TEAM and one elsewhere."""
    settings = WorkflowSettings(connectors=far_side.connectors(), timer_poll_seconds=0.2)
    service = await build_service(module_kafka, module_database, settings, auth=auth_settings)
    transport = httpx.ASGITransport(app=service.app)
    async with (
        service.running(),
        httpx.AsyncClient(transport=transport, base_url="http://workflow") as client,
    ):
        found = Instances(service, client)
        own = await intake.submit(
            "invoice_approval",
            {"invoice_id": "INV-M", "vendor": "Acme", "amount": 1840.5, "currency": "EUR"},
        )
        await workflow_events.wait_for(own, "workflow.ApprovalRequested")
        other = await intake.submit(
            "software_access",
            {"software": "tableau", "monthly_cost": 70, "justification": "Dashboards"},
        )
        await workflow_events.wait_for(other, "workflow.ApprovalRequested")
        found.ids = {Scope.OWN: own, Scope.OTHER: other}
        yield found


async def test_every_endpoint_has_a_rule_and_a_call(workflow_api: Instances) -> None:
    assert routes(workflow_api.service.app) == set(RULES) == set(CALLS)


@pytest.mark.parametrize(("endpoint", "role", "scope"), cases(RULES))
async def test_who_may_call_what(
    workflow_api: Instances, tokens: Tokens, endpoint: str, role: Role | None, scope: Scope
) -> None:
    headers = {} if role is None else tokens.headers(role, teams=[TEAM], subject=f"m-{role}")
    response = await CALLS[endpoint](workflow_api.client, headers, workflow_api.ids[scope])
    expected = RULES[endpoint].expect(role, scope)
    if expected is Expect.ALLOWED:
        assert response.status_code in RULES[endpoint].allowed, response.text
    else:
        assert response.status_code == int(expected), response.text


async def test_a_list_holds_only_the_callers_teams_instances(
    workflow_api: Instances, tokens: Tokens
) -> None:
    listed = await workflow_api.client.get(
        "/v1/instances", headers=tokens.headers(Role.AGENT, teams=[TEAM])
    )
    ids = {item["request_id"] for item in listed.json()["items"]}
    assert str(workflow_api.ids[Scope.OTHER]) not in ids
    assert {item["team"] for item in listed.json()["items"]} <= {TEAM}
