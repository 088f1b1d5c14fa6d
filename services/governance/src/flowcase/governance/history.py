"""History in and out: the service layer of `flowcase governance import` and `export`.

An import feeds the envelopes a reader parsed to `Projection.apply_imported`, a batch per
transaction: the path of live traffic, so an imported history gives the figures the same events
would give live. Every imported event id is derived from the event's content and recorded, so
importing it again changes nothing and says so (its events are already present). An export
reconstructs, from the facts in the store, the entries that state them
(`activity_log.entries_of`) and writes them as OCEL 2.0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flowcase.events import Envelope
from flowcase.governance.activity_log import entries_of
from flowcase.governance.facts import Facts
from flowcase.governance.log_readers import Parsed, Rejected
from flowcase.governance.ocel2 import write_ocel2
from flowcase.governance.ports import FactStore
from flowcase.governance.projection import Projection
from flowcase.governance.projector import fold
from flowcase.governance.windows import Period

# Every instant PostgreSQL and Python both hold: the export's period is all of event time.
ALL_TIME = Period(datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))


@dataclass
class ImportReport:
    new: int = 0
    already_present: int = 0  # imported before (the same content gives the same event id)
    rejected: list[Rejected] = field(default_factory=list)


def first_rejection(parsed: Iterable[Parsed]) -> Rejected | None:
    """The first invalid record of a log, or None when every record is valid (a dry run)."""
    return next((p for p in parsed if isinstance(p, Rejected)), None)


async def import_history(
    parsed: Iterable[Parsed],
    projection: Projection,
    *,
    batch_size: int = 5000,
    on_rejected: Callable[[Rejected], None] = lambda _: None,
) -> ImportReport:
    """Project every valid record, `batch_size` per transaction; report every invalid one.

    Reading and folding the next batch (in a worker thread) overlaps with storing the one
    before, so the database's work and the parsing share the machine's cores; one batch waits
    at most, which bounds the memory an import holds.
    """
    report = ImportReport()
    records = iter(parsed)

    def next_batch() -> tuple[list[Envelope], Facts]:
        batch: list[Envelope] = []
        for item in records:
            if isinstance(item, Rejected):
                report.rejected.append(item)
                on_rejected(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                break
        return batch, fold(batch)

    async def store(batch: list[Envelope], facts: Facts) -> None:
        new = await projection.apply_imported(batch, facts)
        report.new += new
        # Two identical records are one event: counted once, as new or as already present.
        report.already_present += len({envelope.event_id for envelope in batch}) - new

    batch, facts = await asyncio.to_thread(next_batch)
    while batch:
        _, (batch, facts) = await asyncio.gather(store(batch, facts), asyncio.to_thread(next_batch))
    return report


async def export_ocel2(repository: FactStore) -> dict[str, Any]:
    """The OCEL 2.0 document of every fact a figure can use (facts of a known process type)."""
    facts = await repository.load(ALL_TIME)
    return write_ocel2(entries_of(facts))
