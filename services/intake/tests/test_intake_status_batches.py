"""The status read model folding whole batches in one transaction, on the real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from flowcase.events import Envelope
from flowcase.events.catalogue import workflow
from flowcase.intake.postgres import PostgresStatusStore, create_schema
from flowcase.intake.status_service import StatusService

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.fixture
async def status(database_url: str) -> AsyncIterator[StatusService]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    await create_schema(pool)
    try:
        yield StatusService(PostgresStatusStore(pool))
    finally:
        await pool.close()


def journey(request_id: UUID) -> list[Envelope]:
    """A routine request's workflow events, one minute apart."""
    payloads = [
        workflow.StepEntered(request_id=request_id, step="reset", kind="action"),
        workflow.StepCompleted(request_id=request_id, step="reset", kind="action", outcome="ok"),
        workflow.InstanceCompleted(request_id=request_id, outcome="completed"),
    ]
    return [
        Envelope.wrap(
            payload,
            source="workflow",
            request_id=request_id,
            occurred_at=T0 + timedelta(minutes=minute),
        )
        for minute, payload in enumerate(payloads)
    ]


async def test_a_batch_of_interleaved_requests_folds_each_once_in_order(
    status: StatusService,
) -> None:
    first, second = uuid4(), uuid4()
    a, b = journey(first), journey(second)
    assert await status.project([a[0]]) == 1  # recorded before, by an earlier batch

    batch = [a[0], b[0], a[1], b[1], a[1], b[2], a[2]]  # a[0] again, a[1] twice
    assert await status.project(batch) == 5

    for request_id, events in ((first, a), (second, b)):
        found = await status.request(request_id)
        assert found is not None
        state, timeline = found
        assert state.status.value == "completed"
        assert [entry.event_id for entry in timeline] == [e.event_id for e in events]
    assert await status.project(batch) == 0  # redelivered: nothing changes


async def test_batches_touching_the_same_requests_in_any_order_never_deadlock(
    status: StatusService,
) -> None:
    requests = [uuid4() for _ in range(20)]
    events = [journey(request_id) for request_id in requests]
    forward = [e for trio in events for e in trio]
    backward = list(reversed(forward))
    changed = await asyncio.wait_for(
        asyncio.gather(*(status.project(b) for b in (forward, backward, forward, backward))), 30
    )
    assert sum(changed) == len(forward)
    for request_id in requests:
        found = await status.request(request_id)
        assert found is not None
        assert len(found[1]) == 3
