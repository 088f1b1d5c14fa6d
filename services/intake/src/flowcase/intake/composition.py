"""The composition root: intake assembled from its settings, for `__main__`, tests and the
benchmark alike."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import FastAPI

from flowcase.events.kafka import EventProducer
from flowcase.events.kafka.consumer import is_transient
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.intake.definitions_reader import DefinitionsReader
from flowcase.intake.http_api import OPENAPI_TAGS, intake_router
from flowcase.intake.postgres import PostgresStatusStore, PostgresSubmissionLedger, create_schema
from flowcase.intake.rate_limit import RateLimiter
from flowcase.intake.request_types import RequestTypes
from flowcase.intake.settings import IntakeSettings
from flowcase.intake.status_projector import StatusProjector
from flowcase.intake.status_service import StatusService
from flowcase.intake.submission_service import SubmissionService
from flowcase.intake.submissions_consumer import SubmissionsConsumer
from flowcase.runtime import HttpSettings, ReadinessCheck, create_app, workers_running
from flowcase.runtime.auth import Authenticator
from flowcase.runtime.runner import Worker
from flowcase.runtime.settings import AuthSettings

DESCRIPTION = """\
Upstream systems and people submit work here. A submission is judged against the JSON Schema of
its request type, as the workflow service publishes it, and accepted (202) only once Kafka has
stored the `intake.RequestSubmitted` event. `GET /v1/requests/{id}` follows a request through the
workflow and any case to its outcome. Errors are RFC 9457 problem details
(`application/problem+json`) whose `errors` list every failing field with the reason.
Every endpoint but the health checks and `/metrics` needs a bearer token (see docs/security.md).
"""


@dataclass
class IntakeAssembly:
    """The assembled service: its HTTP app, its workers, and what they hold open."""

    app: FastAPI
    workers: Sequence[Worker]
    definitions: DefinitionsReader
    submissions: SubmissionService
    status: StatusService
    producer: EventProducer
    pool: asyncpg.Pool

    async def close(self) -> None:
        await self.producer.stop()
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[IntakeAssembly]:
        """Run the workers in this event loop (in-process use: tests, the benchmark); the HTTP
        app is then served by whatever drives `app`. `serve()` does this for a process."""
        try:
            async with workers_running(self.workers):
                yield self
        finally:
            await self.close()


async def build_service(
    *,
    kafka: KafkaSettings,
    database: DatabaseSettings,
    http: HttpSettings,
    intake: IntakeSettings,
    auth: AuthSettings | None = None,
) -> IntakeAssembly:
    """Connect to PostgreSQL (creating intake's tables) and Kafka; the workers are not running
    yet. Raises when either cannot be reached. `auth` defaults to FLOWCASE_AUTH_*."""
    authenticator = Authenticator(auth or AuthSettings())
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=intake.database_pool_size)
    try:
        await create_schema(pool)
        producer = EventProducer(kafka, client_id="flowcase-intake")
        await producer.start()
    except BaseException:
        await pool.close()
        raise
    request_types = RequestTypes()
    definitions = DefinitionsReader(kafka, request_types)
    status = StatusService(PostgresStatusStore(pool))
    submissions = SubmissionService(
        request_types=request_types,
        request_types_loaded=definitions.caught_up.is_set,
        ledger=PostgresSubmissionLedger(pool),
        publisher=producer,
        status=status,
        max_bytes=http.max_body_bytes,
        publish_timeout=intake.publish_timeout_seconds,
        unavailable=unavailable,
    )
    app = create_app(
        title="Flowcase intake",
        description=DESCRIPTION,
        max_body_bytes=http.max_body_bytes,
        openapi_tags=OPENAPI_TAGS,
        readiness=[
            ReadinessCheck("postgresql", status.reachable),
            ReadinessCheck("kafka", definitions.kafka_reachable),
            ReadinessCheck("request_types", definitions.loading_state),
        ],
    )
    app.include_router(
        intake_router(
            submissions=submissions,
            status=status,
            request_types=request_types,
            request_types_loaded=definitions.caught_up.is_set,
            retry_after_seconds=intake.retry_after_seconds,
            authenticator=authenticator,
            rate_limiter=RateLimiter(rate=intake.submit_rate_per_second, burst=intake.submit_burst),
        )
    )
    workers: list[Worker] = [
        definitions,
        SubmissionsConsumer(
            kafka, submissions, producer, request_types_loaded=definitions.caught_up
        ),
        StatusProjector(kafka, status, producer, workflow_group=intake.workflow_consumer_group),
    ]
    return IntakeAssembly(
        app=app,
        workers=workers,
        definitions=definitions,
        submissions=submissions,
        status=status,
        producer=producer,
        pool=pool,
    )


def unavailable(exc: BaseException) -> str | None:
    """Which of intake's drivers failed for want of its server, from the error it raised (the
    submission service's reading of Kafka's and PostgreSQL's errors)."""
    if isinstance(exc, KafkaError):
        return f"Kafka did not store the request ({type(exc).__name__})"
    if is_transient(exc):
        return f"the database did not answer ({type(exc).__name__})"
    return None
