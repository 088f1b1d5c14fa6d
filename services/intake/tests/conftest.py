from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from flowcase.devstack.dev_tokens import Tokens
from flowcase.devstack.in_process import eventually
from flowcase.events.catalogue.base import EventPayload
from flowcase.events.catalogue.workflow import DefinitionPublished
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.composition import IntakeAssembly, build_service
from flowcase.intake.settings import IntakeSettings
from flowcase.runtime import HttpSettings
from flowcase.runtime.auth import Role
from flowcase.runtime.settings import AuthSettings

# The upstream system the tests submit as (on behalf of the requester each submission names).
CLIENT = "crm-connector"

INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_id", "amount"],
    "properties": {
        "invoice_id": {"type": "string", "minLength": 1},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "vendor": {"type": "string"},
    },
}


@pytest.fixture
def definition() -> Callable[..., DefinitionPublished]:
    """A definition of `invoice_approval` (or another type) as the workflow publishes it."""

    def make(
        version: int = 1,
        schema: dict[str, Any] | None = None,
        request_type: str = "invoice_approval",
    ) -> DefinitionPublished:
        return DefinitionPublished(
            request_type=request_type,
            process=request_type.replace("_", "-"),
            version=version,
            title=request_type.replace("_", " ").capitalize(),
            request_schema=schema or INVOICE_SCHEMA,
            steps=[{"name": "route-to-team", "kind": "route"}],
        )

    return make


@pytest.fixture
def invoice() -> Callable[..., dict[str, Any]]:
    """A valid submission of the published type, with any field changed."""

    def make(**changes: Any) -> dict[str, Any]:
        return {
            "request_type": "invoice_approval",
            "requester": "ap-clerk-7",
            "priority": "normal",
            "payload": {"invoice_id": "INV-2291", "amount": 1840.5, "vendor": "Acme"},
        } | changes

    return make


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[EventProducer]:
    async with EventProducer(kafka_settings, client_id="intake-tests") as producer:
        yield producer


@pytest.fixture
def publish(producer: EventProducer) -> Callable[..., Any]:
    """Publish catalogue events as the other services would."""

    async def send(*payloads: EventPayload, **envelope: Any) -> list[Envelope]:
        envelopes = [Envelope.wrap(p, source="tests", **envelope) for p in payloads]
        await producer.publish_all(envelopes)
        return envelopes

    return send


@pytest.fixture
def start_intake(
    kafka_settings: KafkaSettings, database_url: str, auth_settings: AuthSettings, tokens: Tokens
) -> Callable[
    ..., contextlib.AbstractAsyncContextManager[tuple[IntakeAssembly, httpx.AsyncClient]]
]:
    """Build and run intake in this process; yields it with an HTTP client of its app that
    authenticates as the upstream client `CLIENT`."""

    @contextlib.asynccontextmanager
    async def start(
        kafka: KafkaSettings | None = None,
        *,
        ready: bool = True,
        **intake_settings: Any,
    ) -> AsyncIterator[tuple[IntakeAssembly, httpx.AsyncClient]]:
        service = await build_service(
            kafka=kafka or kafka_settings,
            database=DatabaseSettings(url=database_url),
            http=HttpSettings(max_body_bytes=4096),
            intake=IntakeSettings(**intake_settings),
            auth=auth_settings,
        )
        async with (
            service.running(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=service.app),
                base_url="http://intake",
                headers=tokens.headers(Role.CLIENT, subject=CLIENT),
            ) as client,
        ):
            if ready:
                await eventually(lambda: client.get("/readyz"), lambda r: r.status_code == 200)
            yield service, client

    return start


@pytest.fixture
def until() -> Callable[..., Any]:
    return eventually
