"""The composition root: the workflow service built from its settings, for `__main__`, the
integration tests and the benchmark alike.

Workers, all in one event loop beside the HTTP API:

- the consumer (`workflow` group) of intake requests and case events;
- the relay, from the event store's notification log to `flowcase.workflow.events`;
- the projection, from the same log to the instance list and the durable timers;
- the timer loop;
- the service layer, which recovers actions interrupted by a restart and holds effect tasks;
- the definitions publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from fastapi import FastAPI

from flowcase.events.kafka import ConsumerRunner, EventProducer
from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.eventstore import DeadLetterTopic, Relay, postgres_env
from flowcase.runtime import HttpSettings, KafkaProbe, ReadinessCheck, create_app, workers_running
from flowcase.runtime.auth import Authenticator
from flowcase.runtime.runner import Worker
from flowcase.runtime.settings import AuthSettings
from flowcase.workflow.api import TAGS, api_router
from flowcase.workflow.application import WorkflowApplication
from flowcase.workflow.catalogue_mapping import to_envelopes
from flowcase.workflow.consumers import workflow_consumer
from flowcase.workflow.definition_files import shipped_folder
from flowcase.workflow.definition_store import load_definitions
from flowcase.workflow.definitions_publisher import DefinitionsPublisher
from flowcase.workflow.projection import InstanceProjection
from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.registry import DefinitionRegistry
from flowcase.workflow.service import WorkflowService
from flowcase.workflow.settings import WorkflowSettings
from flowcase.workflow.timers import TimerLoop
from flowcase.workflow.webhook import SessionPoster, WebhookConnectors

DESCRIPTION = """Runs every request on its process definition: one event-sourced instance per
request, approvals and manual overrides by people, durable timers, actions through connectors,
and escalation to a case when the request leaves the defined path."""

RELAY_NAME = "workflow-events"
# Connector calls in flight at once: enough to hide the far side's latency, few enough to keep
# the far side and the pool of kept-alive connections small.
CONNECTOR_CONNECTIONS = 32


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkflowAssembly:
    """The assembled service: its HTTP app, its workers, and what they hold open."""

    app: FastAPI
    application: WorkflowApplication
    registry: DefinitionRegistry
    workflow: WorkflowService
    consumer: ConsumerRunner
    relay: Relay
    projection: InstanceProjection
    timers: TimerLoop
    publisher: DefinitionsPublisher
    _pool: asyncpg.Pool
    _producer: EventProducer
    _session: aiohttp.ClientSession
    _kafka_probe: KafkaProbe
    _closed: bool = field(default=False)

    @property
    def workers(self) -> list[Worker]:
        return [
            self.publisher,
            self.projection,
            self.workflow,
            self.timers,
            self.relay,
            self.consumer,
        ]

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WorkflowAssembly]:
        """The workers running in this event loop (without HTTP: tests call `app` in-process);
        stopped and closed on exit."""
        try:
            async with workers_running(self.workers):
                yield self
        finally:
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._kafka_probe.close()
        await self._session.close()
        await self._producer.stop()
        self.workflow.close()
        await asyncio.to_thread(self.application.close)
        await self._pool.close()


async def build_service(
    kafka: KafkaSettings,
    database: DatabaseSettings,
    settings: WorkflowSettings | None = None,
    http: HttpSettings | None = None,
    *,
    auth: AuthSettings | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> WorkflowAssembly:
    settings = settings or WorkflowSettings()
    http = http or HttpSettings()
    authenticator = Authenticator(auth or AuthSettings())
    pool = await asyncpg.create_pool(database.url, min_size=2, max_size=10)
    closers: list[Callable[[], object]] = [pool.close]
    try:
        read_model = ReadModel(pool)
        await read_model.create_tables()
        registry = await load_definitions(pool, settings.definitions_folder or shipped_folder())
        env = {
            **postgres_env(database.url, pool_size=settings.store_threads),
            # Instances in flight stay in memory between their triggers (fast-forwarded from
            # the store on each load, so another replica's writes are never missed).
            **(
                {"AGGREGATE_CACHE_MAXSIZE": str(settings.instance_cache_size)}
                if settings.instance_cache_size
                else {}
            ),
        }
        application = await asyncio.to_thread(WorkflowApplication, registry, env)
        closers.append(application.close)
        producer = EventProducer(kafka, client_id="workflow")
        await producer.start()
    except BaseException:
        for close in reversed(closers):
            result = close()
            if asyncio.iscoroutine(result):
                await result
        raise

    # The timeout bounds each call to the far side, not the wait for a pooled connection: a
    # burst of actions queues (in the connectors) rather than failing calls never made.
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.connector_timeout_seconds),
        connector=aiohttp.TCPConnector(limit=CONNECTOR_CONNECTIONS),
    )
    connectors = WebhookConnectors(
        settings.connectors,
        SessionPoster(session),
        gateway=settings.connector_gateway_url,
        max_calls=CONNECTOR_CONNECTIONS,
    )
    projection = InstanceProjection(
        application,
        read_model,
        dead_letters=DeadLetterTopic(producer, kafka, store="workflow"),
    )
    workflow = WorkflowService(
        application,
        read_model,
        connectors,
        clock,
        threads=settings.store_threads,
        recover_after=projection.caught_up,
        max_effects_in_flight=settings.max_effects_in_flight,
        action_recovery_after=timedelta(seconds=settings.action_recovery_seconds),
    )
    timers = TimerLoop(
        read_model,
        workflow.fire_timer,
        clock,
        poll_seconds=settings.timer_poll_seconds,
        wake=projection.advanced,
    )
    relay = Relay(
        name=RELAY_NAME,
        application=application,
        to_envelopes=to_envelopes,
        producer=producer,
        pool=pool,
    )
    consumer = workflow_consumer(kafka, workflow, producer, settings.consumer_group)
    publisher = DefinitionsPublisher(producer, registry)
    kafka_probe = KafkaProbe(kafka)
    app = create_app(
        title="Flowcase workflow",
        description=DESCRIPTION,
        readiness=[
            ReadinessCheck("kafka", kafka_probe),
            ReadinessCheck("postgresql", read_model.reachable),
            ReadinessCheck("definitions", publisher.readiness),
            ReadinessCheck("projection", projection.readiness),
            ReadinessCheck("relay", relay.readiness),
        ],
        max_body_bytes=http.max_body_bytes,
        openapi_tags=TAGS,
    )
    app.include_router(api_router(workflow, read_model, registry, authenticator))
    return WorkflowAssembly(
        app=app,
        application=application,
        registry=registry,
        workflow=workflow,
        consumer=consumer,
        relay=relay,
        projection=projection,
        timers=timers,
        publisher=publisher,
        _pool=pool,
        _producer=producer,
        _session=session,
        _kafka_probe=kafka_probe,
    )
