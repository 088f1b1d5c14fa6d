"""The facts in PostgreSQL give the figures the in-memory fold gives, however they arrive."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta

import pytest

from flowcase.events import Envelope
from flowcase.governance import Granularity, Period, fold, measure, process_types, series
from flowcase.governance import repository as repository_module
from flowcase.governance.projection import Projection
from flowcase.governance.repository import FactRepository


async def test_stored_facts_in_shuffled_redelivered_batches_give_the_figures_of_the_fold(
    repository: FactRepository, make_random_history: Callable[..., list[Envelope]]
) -> None:
    events = make_random_history(7)
    rng = random.Random(7)
    arrival = events + rng.sample(events, 40)
    rng.shuffle(arrival)
    projection = Projection(repository)
    cut = 0
    while cut < len(arrival):
        size = rng.randint(1, 60)
        await projection.apply(arrival[cut : cut + size])
        cut += size

    expected = fold(events)
    first, last = min(e.occurred_at for e in events), max(e.occurred_at for e in events)
    everything = Period(first - timedelta(days=1), last + timedelta(days=1))
    assert await repository.process_types() == process_types(expected)
    for process_type in process_types(expected):
        stored = await repository.load(everything, process_type)
        assert measure(stored, process_type, everything) == measure(
            expected, process_type, everything
        )
        # A slice of one day or one hour holds what that window's figures need, no less.
        for granularity in (Granularity.DAY, Granularity.HOUR):
            for want in series(expected, process_type, granularity, first, last):
                sliced = await repository.load(want.period, process_type)
                assert measure(sliced, process_type, want.period) == want
        every_type = await repository.load(everything)
        assert measure(every_type, process_type, everything) == measure(
            expected, process_type, everything
        )


TABLES = ("requests", "step_executions", "overrides", "audit_records", "cases")


async def _rows(repository: FactRepository) -> dict[str, list[tuple[object, ...]]]:
    async with repository._pool.acquire() as conn:
        return {
            table: sorted(tuple(row) for row in await conn.fetch(f"SELECT * FROM {table}"))
            for table in TABLES
        }


async def test_a_staged_write_merges_as_the_row_by_row_upsert_does(
    repository: FactRepository,
    make_random_history: Callable[..., list[Envelope]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large batch is copied into a staging table and merged by one statement; a small one is
    upserted row by row. The same shuffled, redelivered batches leave the same rows either way."""
    events = make_random_history(11)
    rng = random.Random(11)
    arrival = events + rng.sample(events, 60)
    rng.shuffle(arrival)
    projection = Projection(repository)

    async def stored_with(stage_from: int) -> dict[str, list[tuple[object, ...]]]:
        monkeypatch.setattr(repository_module, "STAGE_FROM", stage_from)
        for cut in range(0, len(arrival), 50):
            await projection.apply(arrival[cut : cut + 50])
        rows = await _rows(repository)
        async with repository._pool.acquire() as conn:
            await conn.execute(";".join(f"TRUNCATE {table}" for table in TABLES))
        return rows

    staged = await stored_with(1)
    assert all(staged[table] for table in ("requests", "step_executions", "audit_records"))
    assert staged == await stored_with(10**9)
