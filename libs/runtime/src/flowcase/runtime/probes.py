"""Readiness probes of the two dependencies every service has: Kafka and its own PostgreSQL."""

from __future__ import annotations

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from flowcase.events.settings import KafkaSettings


class KafkaProbe:
    """Asks the cluster for its brokers over one admin connection, opened at the first probe."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin: AIOKafkaAdminClient | None = None

    async def __call__(self) -> str | None:
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self._settings.client_options(), request_timeout_ms=2500)
            await admin.start()
            self._admin = admin
        cluster = await self._admin.describe_cluster()
        return None if cluster.get("brokers") else "the cluster reports no broker"

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None


class PostgresProbe:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self) -> str | None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return None
