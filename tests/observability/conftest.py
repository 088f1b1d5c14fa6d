"""The four services in this process, on this module's own topics and databases.

Every service is built by its own composition root and runs its workers in the test's event
loop; the HTTP apps are called in-process. They share the process's tracer provider, so the
`spans` fixture sees every span of every service, and the process's Prometheus registry.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from flowcase.case.composition import build_service as build_case
from flowcase.devstack.database_copies import own_databases
from flowcase.devstack.dedicated import SERVICE_NAMES
from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.in_process import eventually
from flowcase.devstack.topic_copies import own_topics
from flowcase.events.settings import KafkaSettings
from flowcase.governance.composition import build_service as build_governance
from flowcase.intake.composition import build_service as build_intake
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings, workers_running
from flowcase.runtime.auth import Role, mint_token
from flowcase.runtime.settings import AuthSettings
from flowcase.workflow.composition import build_service as build_workflow


@dataclass
class Platform:
    kafka: KafkaSettings
    http: dict[str, httpx.AsyncClient]
    """An in-process client of each service's app, authenticated as an administrator."""

    def topic(self, name: Any) -> str:
        return self.kafka.topic(name)

    async def submit(self, request_type: str, payload: dict[str, Any]) -> str:
        response = await self.http["intake"].post(
            "/v1/requests",
            json={
                "request_type": request_type,
                "requester": "jdoe@example.com",
                "priority": "normal",
                "payload": payload,
            },
        )
        assert response.status_code == 202, response.text
        return str(response.json()["request_id"])


@pytest.fixture(scope="module")
def until() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture(scope="module")
async def platform(stack: Endpoints) -> AsyncIterator[Platform]:
    # Every service reads FLOWCASE_AUTH_* itself: one development secret for all four.
    os.environ.setdefault("FLOWCASE_AUTH_DEV_SECRET", secrets.token_urlsafe(32))
    auth = AuthSettings()
    token = mint_token(auth, subject="observability-test", roles=[Role.CLIENT, Role.ADMIN])
    async with (
        own_topics(stack) as kafka,
        own_databases(stack, SERVICE_NAMES, prefix="test_obs") as db,
        contextlib.AsyncExitStack() as stack_,
    ):
        http = HttpSettings()
        workflow = await build_workflow(kafka, db["workflow"], http=http)
        await stack_.enter_async_context(workflow.running())
        case = await build_case(kafka=kafka, database=db["case"], http=http)
        await stack_.enter_async_context(case.running())
        governance = await build_governance(kafka, db["governance"], http)
        stack_.push_async_callback(governance.close)
        await stack_.enter_async_context(workers_running(governance.workers))
        intake = await build_intake(
            kafka=kafka, database=db["intake"], http=http, intake=IntakeSettings(), auth=auth
        )
        await stack_.enter_async_context(intake.running())
        apps = {"intake": intake.app, "workflow": workflow.app, "case": case.app}
        apps["governance"] = governance.app
        clients = {
            name: await stack_.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{name}",
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            for name, app in apps.items()
        }
        for client in clients.values():
            await eventually(
                functools.partial(client.get, "/readyz"), lambda r: r.status_code == 200
            )
        yield Platform(kafka=kafka, http=clients)
