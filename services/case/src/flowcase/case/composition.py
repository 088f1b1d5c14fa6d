"""The composition root: the case service assembled from its settings, for `__main__`, tests and
the benchmark alike."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI

from flowcase.case.application import CaseApplication
from flowcase.case.case_search import CaseSearch, create_schema
from flowcase.case.case_search_projector import CaseSearchProjector
from flowcase.case.case_service import CaseService
from flowcase.case.catalogue_mapping import to_envelopes
from flowcase.case.chain_anchors import ChainAnchorPublisher
from flowcase.case.escalations_consumer import EscalationsConsumer
from flowcase.case.http_api import OPENAPI_TAGS, case_router, install_case_problems
from flowcase.case.promise_watch import PromiseWatch
from flowcase.case.settings import CaseSettings
from flowcase.events.kafka import EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.eventstore import DeadLetterTopic, Relay, postgres_env
from flowcase.runtime import (
    HttpSettings,
    KafkaProbe,
    PostgresProbe,
    ReadinessCheck,
    create_app,
    workers_running,
)
from flowcase.runtime.auth import Authenticator
from flowcase.runtime.runner import Worker
from flowcase.runtime.settings import AuthSettings

DESCRIPTION = """\
The system of record for work that could not be scripted. A case opens when the workflow
service escalates a request (`workflow.EscalatedToCase`, one case per request) or when a person
opens one here; every action on it is an event in its hash-chained, event-sourced record,
published on `flowcase.case.events`. Commands carry the actor and the case version the caller
read (`If-Match: "4"` or `expected_version`): a stale version is 409 and records nothing.
Errors are RFC 9457 problem details (`application/problem+json`).
"""

RELAY_NAME = "case-events"
# Connections of the event store's pool (as many again may overflow); the service's threads.
STORE_POOL_SIZE = 5


@dataclass
class CaseAssembly:
    """The assembled service: its HTTP app, its workers, and what they hold open."""

    app: FastAPI
    workers: Sequence[Worker]
    service: CaseService
    search: CaseSearch
    projector: CaseSearchProjector
    relay: Relay
    anchors: ChainAnchorPublisher
    promises: PromiseWatch
    escalations: EscalationsConsumer
    producer: EventProducer
    kafka_probe: KafkaProbe
    pool: asyncpg.Pool

    async def close(self) -> None:
        await self.producer.stop()
        await self.kafka_probe.close()
        await self.pool.close()
        await asyncio.to_thread(self.service.close)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CaseAssembly]:
        """Run the workers in this event loop (in-process use: tests, the benchmark), then
        close; the HTTP app is served by whatever drives `app`. `serve()` does this for a
        process."""
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
    auth: AuthSettings | None = None,
    settings: CaseSettings | None = None,
) -> CaseAssembly:
    """Connect to PostgreSQL (creating the case tables) and Kafka; the workers are not running
    yet. Raises when either cannot be reached. `auth` and `settings` default to the
    environment's (FLOWCASE_AUTH_*, FLOWCASE_CASE_*)."""
    authenticator = Authenticator(auth or AuthSettings())
    settings = settings or CaseSettings()
    # Each of the three log followers holds a listening connection and one for its batch; the
    # rest serve search reads and the readiness probe.
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=8)
    service: CaseService | None = None
    try:
        async with pool.acquire() as conn:
            await create_schema(conn)
        application = await asyncio.to_thread(
            CaseApplication, env=postgres_env(database.url, pool_size=STORE_POOL_SIZE)
        )
        service = CaseService(application, threads=2 * STORE_POOL_SIZE)
        producer = EventProducer(kafka, client_id="flowcase-case")
        await producer.start()
    except BaseException:
        if service is not None:
            await asyncio.to_thread(service.close)
        await pool.close()
        raise

    kafka_probe = KafkaProbe(kafka)
    search = CaseSearch(pool)
    projector = CaseSearchProjector(
        application=application,
        pool=pool,
        dead_letters=DeadLetterTopic(producer, kafka, store="case"),
    )
    relay = Relay(
        name=RELAY_NAME,
        application=application,
        to_envelopes=to_envelopes,
        producer=producer,
        pool=pool,
    )
    anchors = ChainAnchorPublisher(
        application=application, producer=producer, kafka=kafka, pool=pool
    )
    escalations = EscalationsConsumer(kafka, service, producer)
    promises = PromiseWatch(
        service, search, lambda: datetime.now(UTC), every=settings.promise_watch_seconds
    )
    app = create_app(
        title="Flowcase case",
        description=DESCRIPTION,
        max_body_bytes=http.max_body_bytes,
        openapi_tags=OPENAPI_TAGS,
        readiness=[
            ReadinessCheck("postgresql", PostgresProbe(pool)),
            ReadinessCheck("kafka", kafka_probe),
            ReadinessCheck("case_search", projector.readiness),
            ReadinessCheck("relay", relay.readiness),
            ReadinessCheck("chain_anchors", anchors.readiness),
        ],
    )
    install_case_problems(app)
    app.include_router(
        case_router(
            service, search, authenticator, anchors.anchor_of, triage_team=settings.triage_team
        )
    )
    return CaseAssembly(
        app=app,
        workers=[escalations, relay, projector, anchors, promises],
        service=service,
        search=search,
        projector=projector,
        relay=relay,
        anchors=anchors,
        escalations=escalations,
        promises=promises,
        producer=producer,
        kafka_probe=kafka_probe,
        pool=pool,
    )
