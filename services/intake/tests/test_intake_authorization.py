"""Who may call each intake endpoint: every endpoint by role, on one's own request and another's.

Requesters and clients submit and read their own requests (the requester, or who submitted it);
admins everything; the request types are everyone's. Another's request is 404, never 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from flowcase.devstack.authorization_matrix import Expect, Rule, Scope, cases, routes, rule
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.composition import IntakeAssembly, build_service
from flowcase.intake.rate_limit import RateLimiter
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

RULES: dict[str, Rule] = {
    "POST /v1/requests": rule(Role.REQUESTER, Role.CLIENT, allowed={202}),
    "GET /v1/requests/{request_id}": rule(Role.REQUESTER, Role.CLIENT, scoped=True),
    "GET /v1/requests": rule(Role.REQUESTER, Role.CLIENT),
    "GET /v1/request-types": rule(*Role),
}

SCHEMA = {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "number"}}}


def subject(role: Role) -> str:
    return f"matrix-{role}"


def submission(requester: str) -> dict[str, Any]:
    return {"request_type": "expense", "requester": requester, "payload": {"amount": 12}}


class Intake:
    def __init__(self, service: IntakeAssembly, client: httpx.AsyncClient) -> None:
        self.service = service
        self.client = client
        self.requests: dict[tuple[Role, Scope], UUID] = {}


@pytest.fixture(scope="module")
async def intake(
    module_kafka_settings: KafkaSettings,
    module_database_url: str,
    auth_settings: AuthSettings,
    tokens: Tokens,
) -> AsyncIterator[Intake]:
    """One intake for the module, with a request of each role's subject and one of nobody's."""
    async with EventProducer(module_kafka_settings, client_id="matrix") as producer:
        await producer.publish(
            Envelope.wrap(
                DefinitionPublished(
                    request_type="expense",
                    process="expense",
                    version=1,
                    title="Expense",
                    request_schema=SCHEMA,
                    steps=[{"name": "route", "kind": "route"}],
                ),
                source="tests",
            )
        )
    service = await build_service(
        kafka=module_kafka_settings,
        database=DatabaseSettings(url=module_database_url),
        http=HttpSettings(),
        intake=IntakeSettings(submit_rate_per_second=0.5, submit_burst=10),
        auth=auth_settings,
    )
    transport = httpx.ASGITransport(app=service.app)
    async with (
        service.running(),
        httpx.AsyncClient(transport=transport, base_url="http://intake") as client,
    ):
        for _ in range(200):
            if (await client.get("/readyz")).status_code == 200:
                break
            await _sleep()
        running = Intake(service, client)
        admin = tokens.admin()
        other = await client.post("/v1/requests", json=submission("nobody"), headers=admin)
        assert other.status_code == 202, other.text
        for role in Role:
            own = await client.post("/v1/requests", json=submission(subject(role)), headers=admin)
            assert own.status_code == 202, own.text
            running.requests[role, Scope.OWN] = UUID(own.json()["request_id"])
            running.requests[role, Scope.OTHER] = UUID(other.json()["request_id"])
        yield running


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.1)


Call = Callable[[httpx.AsyncClient, dict[str, str], UUID, str], Awaitable[httpx.Response]]

CALLS: dict[str, Call] = {
    "POST /v1/requests": lambda c, h, _, who: c.post(
        "/v1/requests", json=submission(who), headers=h
    ),
    "GET /v1/requests/{request_id}": lambda c, h, rid, _: c.get(f"/v1/requests/{rid}", headers=h),
    "GET /v1/requests": lambda c, h, _, __: c.get("/v1/requests", headers=h),
    "GET /v1/request-types": lambda c, h, _, __: c.get("/v1/request-types", headers=h),
}


def test_every_endpoint_has_a_rule_and_a_call() -> None:
    from flowcase.intake.http_api import intake_router
    from flowcase.runtime import create_app
    from flowcase.runtime.auth import Authenticator

    app = create_app(title="t", description="d")
    app.include_router(
        intake_router(
            submissions=None,  # type: ignore[arg-type]
            status=None,  # type: ignore[arg-type]
            request_types=None,  # type: ignore[arg-type]
            request_types_loaded=lambda: True,
            retry_after_seconds=1,
            authenticator=Authenticator(AuthSettings(dev_secret="x" * 32)),
            rate_limiter=RateLimiter(rate=1, burst=1),
        )
    )
    assert routes(app) == set(RULES) == set(CALLS)


@pytest.mark.parametrize(("endpoint", "role", "scope"), cases(RULES))
async def test_who_may_call_what(
    intake: Intake, tokens: Tokens, endpoint: str, role: Role | None, scope: Scope
) -> None:
    headers = {} if role is None else tokens.headers(role, subject=subject(role))
    request_id = intake.requests[role or Role.ADMIN, scope]
    response = await CALLS[endpoint](
        intake.client, headers, request_id, subject(role or Role.ADMIN)
    )
    expected = RULES[endpoint].expect(role, scope)
    if expected is Expect.ALLOWED:
        assert response.status_code in RULES[endpoint].allowed, response.text
    else:
        assert response.status_code == int(expected), response.text


async def test_a_list_holds_only_the_callers_own_requests(intake: Intake, tokens: Tokens) -> None:
    for role in (Role.REQUESTER, Role.CLIENT):
        listed = await intake.client.get(
            "/v1/requests", headers=tokens.headers(role, subject=subject(role))
        )
        owners = {(i["requester"], i["submitted_by"]) for i in listed.json()["items"]}
        assert owners, role
        assert all(subject(role) in pair for pair in owners), owners
    everyone = await intake.client.get("/v1/requests", headers=tokens.admin())
    assert {i["requester"] for i in everyone.json()["items"]} >= {"nobody", subject(Role.AGENT)}


async def test_a_requester_submits_only_as_themselves(intake: Intake, tokens: Tokens) -> None:
    response = await intake.client.post(
        "/v1/requests",
        json=submission("someone-else"),
        headers=tokens.headers(Role.REQUESTER, subject="ana"),
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "requester"


async def test_past_the_burst_a_client_is_told_when_to_retry(
    intake: Intake, tokens: Tokens
) -> None:
    limiter = RateLimiter(rate=0.5, burst=2)
    assert [limiter.take("crm") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("crm") == pytest.approx(2.0, abs=0.1)
    assert limiter.take("erp") == 0.0  # each client has its own bucket
    headers = tokens.headers(Role.CLIENT, subject="hasty-client")
    burst = 10  # the module's intake
    answers = [
        (
            await intake.client.post("/v1/requests", json=submission("someone"), headers=headers)
        ).status_code
        for _ in range(burst + 1)
    ]
    assert answers[:burst] == [202] * burst
    assert answers[-1] == 429
    limited = await intake.client.post("/v1/requests", json=submission("x"), headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
