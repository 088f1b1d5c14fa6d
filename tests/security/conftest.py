"""The four services in this process on this module's own topics and databases, for the security
tests: each built by its own composition root, workers running in the test's event loop, HTTP
apps called in-process, every token signed with the session's development secret."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from flowcase.case.composition import build_service as build_case
from flowcase.devstack.database_copies import own_databases
from flowcase.devstack.dedicated import SERVICE_NAMES
from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.in_process import eventually
from flowcase.devstack.topic_copies import own_topics
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.composition import build_service as build_governance
from flowcase.intake.composition import build_service as build_intake
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings, workers_running
from flowcase.runtime.settings import AuthSettings
from flowcase.workflow.composition import build_service as build_workflow
from flowcase.workflow.settings import WorkflowSettings


@dataclass
class Platform:
    kafka: KafkaSettings
    apps: dict[str, FastAPI]
    databases: dict[str, DatabaseSettings]

    def client(self, service: str, headers: dict[str, str]) -> httpx.AsyncClient:
        """An in-process client of one service's app, with these headers on every request."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.apps[service]),
            base_url=f"http://{service}",
            headers=headers,
        )


@contextlib.asynccontextmanager
async def platform_of(
    stack: Endpoints,
    auth: AuthSettings,
    *,
    database_password: str | None = None,
    workflow_settings: WorkflowSettings | None = None,
) -> AsyncIterator[Platform]:
    """All four services running, ready, on topics and databases of their own."""
    async with (
        own_topics(stack) as kafka,
        own_databases(stack, SERVICE_NAMES, prefix="test_sec", password=database_password) as db,
        contextlib.AsyncExitStack() as running,
    ):
        http = HttpSettings()
        workflow = await build_workflow(
            kafka, db["workflow"], workflow_settings, http=http, auth=auth
        )
        await running.enter_async_context(workflow.running())
        case = await build_case(kafka=kafka, database=db["case"], http=http, auth=auth)
        await running.enter_async_context(case.running())
        governance = await build_governance(kafka, db["governance"], http, auth=auth)
        running.push_async_callback(governance.close)
        await running.enter_async_context(workers_running(governance.workers))
        # The tests call as one fast client: the rate limit has its own tests.
        intake_settings = IntakeSettings(submit_rate_per_second=10_000, submit_burst=10_000)
        intake = await build_intake(
            kafka=kafka, database=db["intake"], http=http, intake=intake_settings, auth=auth
        )
        await running.enter_async_context(intake.running())
        platform = Platform(
            kafka=kafka,
            apps={
                "intake": intake.app,
                "workflow": workflow.app,
                "case": case.app,
                "governance": governance.app,
            },
            databases=db,
        )
        for service in SERVICE_NAMES:
            async with platform.client(service, {}) as client:
                await eventually(
                    functools.partial(client.get, "/readyz"), lambda r: r.status_code == 200
                )
        yield platform


@pytest.fixture(scope="module")
def until() -> Callable[..., Any]:
    return eventually


@pytest.fixture(scope="module")
def start_platform(
    stack: Endpoints, auth_settings: AuthSettings
) -> Callable[..., contextlib.AbstractAsyncContextManager[Platform]]:
    """`async with start_platform(database_password=…, workflow_settings=…) as platform:`."""
    return functools.partial(platform_of, stack, auth_settings)
