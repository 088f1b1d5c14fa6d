"""The timer loop rides out a database outage at any point of its cycle, as the consumers do,
and its polling makes no spans.

Found by the reliability suite: a PostgreSQL restart that struck while the loop asked for the
next due time stopped the whole workflow service.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowcase.workflow.read_model import ReadModel
from flowcase.workflow.timers import TimerLoop


class _ServerGoesAway(ReadModel):
    """The first look for the next due time has its connection terminated by the server."""

    terminated = False

    async def next_timer_at(self) -> datetime | None:
        if not self.terminated:
            self.terminated = True
            await self.pool.fetchval("SELECT pg_terminate_backend(pg_backend_pid())")
        return await super().next_timer_at()


async def test_timer_loop_survives_a_terminated_connection_while_waiting(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        read_model = _ServerGoesAway(pool)
        await read_model.create_tables()
        fired: list[tuple[UUID, str]] = []
        some_fired = asyncio.Event()

        async def fire(request_id: UUID, timer_id: str) -> None:
            fired.append((request_id, timer_id))
            some_fired.set()

        loop = TimerLoop(read_model, fire, lambda: datetime.now(UTC), poll_seconds=0.1)
        task = asyncio.create_task(loop.run())
        try:
            await asyncio.sleep(0.5)
            assert read_model.terminated
            assert not task.done(), task.exception() if task.done() else None
            request_id = uuid4()
            await pool.execute(
                "INSERT INTO workflow_timers (request_id, timer_id, fire_at) VALUES ($1, $2, $3)",
                request_id,
                "acknowledge/sla",
                datetime.now(UTC),
            )
            await asyncio.wait_for(some_fired.wait(), 10)
            assert fired == [(request_id, "acknowledge/sla")]
        finally:
            loop.stop()
            await task
    finally:
        await pool.close()


async def test_the_timer_loops_polling_makes_no_spans(
    database_url: str, traced_drivers: None, spans: InMemorySpanExporter
) -> None:
    """Each poll of the loop once made three spans, each a trace of its own, every second."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        read_model = ReadModel(pool)
        await read_model.create_tables()

        async def fire(request_id: UUID, timer_id: str) -> None:
            raise AssertionError("nothing is due")

        loop = TimerLoop(read_model, fire, lambda: datetime.now(UTC), poll_seconds=0.05)
        spans.clear()
        task = asyncio.create_task(loop.run())
        await asyncio.sleep(0.5)  # some ten polls
        loop.stop()
        await task
        assert [s.name for s in spans.get_finished_spans()] == []
        await pool.execute("SELECT 1")
        assert spans.get_finished_spans(), "the instrumentation is not on: the test proves nothing"
    finally:
        await pool.close()
