from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import UUID

import httpx
import pytest

from flowcase.case.aggregate import Case
from flowcase.case.application import CaseApplication
from flowcase.case.composition import CaseAssembly, build_service
from flowcase.case.settings import CaseSettings
from flowcase.devstack.dev_tokens import Tokens
from flowcase.events.catalogue.workflow import EscalatedToCase
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

TRIAGE = "triage"
# The teams of the tests' case workers: unassigned cases are the triage team's.
TEAMS = [TRIAGE, "it-security"]


@pytest.fixture
def app() -> CaseApplication:
    # Named explicitly: an environment configured for PostgreSQL must not leak into unit tests.
    return CaseApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


@pytest.fixture
def escalation() -> EscalatedToCase:
    return EscalatedToCase.model_validate(
        {
            "request_id": "0b5e6a0e-8f3c-4c1e-9a57-6d2f3c4b5a69",
            "request_type": "access_complaint",
            "process": "access-complaint",
            "definition_version": 1,
            "reason_code": "rule",
            "reason": "Access complaints always need an investigation",
            "step": "escalate-complaint",
            "priority": "high",
            "requester": "jdoe",
            "intake_payload": {"system": "payroll", "complaint": "I was locked out"},
            "history": [
                {
                    "step": "check-fields",
                    "kind": "validate",
                    "entered_at": "2026-11-24T09:15:00Z",
                    "completed_at": "2026-11-24T09:15:00Z",
                    "outcome": "valid",
                }
            ],
        }
    )


@pytest.fixture
def case() -> Case:
    opened = Case.open_manually("Payroll lockout", actor="agent-1")
    opened.collect_events()
    return opened


# Fixtures of the integration tests: the service built and running in this process, against
# the real broker and a fresh database.


@pytest.fixture
async def case_service(
    kafka_settings: KafkaSettings, database_url: str, auth_settings: AuthSettings
) -> AsyncIterator[CaseAssembly]:
    assembly = await build_service(
        kafka=kafka_settings,
        database=DatabaseSettings(url=database_url),
        http=HttpSettings(),
        auth=auth_settings,
        settings=CaseSettings(triage_team=TRIAGE),
    )
    async with assembly.running():
        yield assembly


@pytest.fixture
def kafka_env(kafka_settings: KafkaSettings) -> dict[str, str | None]:
    """The environment under which a command (`flowcase case verify`) reads this test's broker
    and its own copies of the topics."""
    return {
        "FLOWCASE_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "FLOWCASE_KAFKA_TOPIC_SUFFIX": kafka_settings.topic_suffix,
    }


@pytest.fixture
async def http(case_service: CaseAssembly, tokens: Tokens) -> AsyncIterator[httpx.AsyncClient]:
    """The API as an admin; commands send the token of the worker who acts (`worker`)."""
    transport = httpx.ASGITransport(app=case_service.app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://case", headers=tokens.admin()
    ) as client:
        yield client


@pytest.fixture
def worker(tokens: Tokens) -> Callable[[str], dict[str, str]]:
    """The headers of a case worker (agent and supervisor of the tests' teams) named `actor`."""

    def headers(actor: str) -> dict[str, str]:
        return tokens.headers(Role.AGENT, Role.SUPERVISOR, teams=TEAMS, subject=actor)

    return headers


@pytest.fixture
def open_case(
    http: httpx.AsyncClient, worker: Callable[[str], dict[str, str]]
) -> Callable[..., Awaitable[UUID]]:
    """Open a case through the API (as sup-1); returns its id."""

    async def open_one(title: str = "Payroll lockout", **fields: Any) -> UUID:
        body = {"title": title, **fields}
        response = await http.post("/v1/cases", json=body, headers=worker("sup-1"))
        assert response.status_code == 201, response.text
        return UUID(response.json()["case_id"])

    return open_one


@pytest.fixture
def act(
    http: httpx.AsyncClient, worker: Callable[[str], dict[str, str]]
) -> Callable[..., Awaitable[httpx.Response]]:
    """POST a command to a case, based on the version given (as If-Match) or on the current one,
    as the worker `actor` (agent-7 unless given)."""

    async def post(
        case_id: UUID, path: str, version: int | None = None, actor: str = "agent-7", **body: Any
    ) -> httpx.Response:
        if version is None:
            version = (await http.get(f"/v1/cases/{case_id}")).json()["version"]
        return await http.post(
            f"/v1/cases/{case_id}/{path}",
            json=body,
            headers={"If-Match": f'"{version}"', **worker(actor)},
        )

    return post
