"""The composition root: governance's adapters wired to its core, ready to serve or to test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from fastapi import FastAPI

from flowcase.events.settings import DatabaseSettings, KafkaSettings
from flowcase.governance.api import TAGS, api_router
from flowcase.governance.consumer import ProjectionConsumer
from flowcase.governance.projection import Projection
from flowcase.governance.prometheus import ProcessFigures, RefreshOnScrape, register, unregister
from flowcase.governance.reports import Policies, Reports
from flowcase.governance.repository import FactRepository
from flowcase.governance.settings import GovernanceSettings
from flowcase.runtime import HttpSettings, KafkaProbe, PostgresProbe, ReadinessCheck, create_app
from flowcase.runtime.auth import Authenticator
from flowcase.runtime.settings import AuthSettings

DESCRIPTION = """Per process type, whether the work sits on the right layer: volume, exception
rate, overrides (per rule), bottleneck steps, audit-trail gaps, resolution time and its drift,
and the recommendation (workflow, case or layered) with the figures behind it. Every figure is
computed by event time from the facts projected off every Flowcase topic; definitions in
docs/governance-metrics.md. Errors are RFC 9457 problem details."""


@dataclass
class GovernanceAssembly:
    """The assembled service: its HTTP app, its workers, and what they hold open."""

    app: FastAPI
    consumer: ProjectionConsumer
    projection: Projection
    repository: FactRepository
    reports: Reports
    figures: ProcessFigures
    _pool: asyncpg.Pool
    _kafka_probe: KafkaProbe

    @property
    def workers(self) -> list[ProjectionConsumer]:
        return [self.consumer]

    async def close(self) -> None:
        """Release the connections; after `serve` returned (workers stopped)."""
        unregister(self.figures)
        await self.consumer.close()
        await self._kafka_probe.close()
        await self._pool.close()


async def build_service(
    kafka: KafkaSettings,
    database: DatabaseSettings,
    http: HttpSettings | None = None,
    settings: GovernanceSettings | None = None,
    *,
    auth: AuthSettings | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> GovernanceAssembly:
    """Connect to the database, create the tables, and wire the API and the projection.
    `auth` defaults to the environment's (FLOWCASE_AUTH_*)."""
    authenticator = Authenticator(auth or AuthSettings())
    settings = settings or GovernanceSettings()
    http = http or HttpSettings()
    pool = await asyncpg.create_pool(database.url, min_size=1, max_size=10)
    try:
        repository = FactRepository(pool)
        await repository.create_tables()
    except BaseException:
        await pool.close()
        raise
    projection = Projection(repository)
    consumer = ProjectionConsumer(
        kafka,
        projection,
        group_id=settings.consumer_group,
        batch_size=settings.batch_size,
    )
    reports = Reports(repository, Policies(default_sla=settings.default_sla), clock)
    kafka_probe = KafkaProbe(kafka)
    app = create_app(
        title="Flowcase governance",
        description=DESCRIPTION,
        readiness=[
            ReadinessCheck("kafka", kafka_probe),
            ReadinessCheck("postgresql", PostgresProbe(pool)),
        ],
        max_body_bytes=http.max_body_bytes,
        openapi_tags=TAGS,
    )
    app.include_router(api_router(reports, authenticator))
    figures = ProcessFigures(lambda: reports.overview(reports.span()))
    register(figures)
    app.add_middleware(RefreshOnScrape, figures=figures)
    return GovernanceAssembly(
        app=app,
        consumer=consumer,
        projection=projection,
        repository=repository,
        reports=reports,
        figures=figures,
        _pool=pool,
        _kafka_probe=kafka_probe,
    )
