"""A log follower's polling makes no spans: with the database drivers instrumented, as in a
service, its idle cycles (a transaction and a read of the log, most finding nothing) would each
be a trace of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from eventsourcing.domain import Aggregate, event
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowcase.eventstore import LogFollower, TrackedApplication, postgres_env


class Counter(Aggregate):
    @event("Started")
    def __init__(self) -> None:
        pass


class Counters(TrackedApplication):
    pass


class Idle(LogFollower):
    async def handle(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        await conn.execute("SELECT 1")


@pytest.fixture
async def pool(database_url: str, traced_drivers: None) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool:
        yield pool


async def test_a_following_loop_makes_no_database_spans(
    database_url: str, pool: asyncpg.Pool, spans: InMemorySpanExporter
) -> None:
    counters = Counters(env=postgres_env(database_url))
    counters.save(Counter())
    spans.clear()  # storing it is traced: it is what a request does
    follower = Idle(name="idle", application=counters, pool=pool, idle_wait=0.05)
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.caught_up.wait(), 60)
        await asyncio.sleep(0.5)  # some ten idle polls
    finally:
        follower.stop()
        await task
    assert follower.caught_up.is_set()
    assert [s.name for s in spans.get_finished_spans()] == []
    # The drivers are instrumented: the same query outside the loop is a span.
    await pool.execute("SELECT 1")
    assert spans.get_finished_spans(), "the instrumentation is not on: the test proves nothing"
