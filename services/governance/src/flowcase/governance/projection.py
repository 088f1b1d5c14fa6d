"""The projection: events in, facts merged into the store, one transaction per batch.

Live traffic (the Kafka consumer) and a history import feed envelopes through this one path, so
they give the same facts and the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from flowcase.events import Envelope
from flowcase.governance.facts import Facts
from flowcase.governance.ports import FactStore
from flowcase.governance.projector import fold


class Projection:
    def __init__(self, repository: FactStore) -> None:
        self._repository = repository

    async def apply(self, envelopes: Iterable[Envelope]) -> None:
        """Fold the events into facts and merge them into the store in one transaction.

        The fold merges facts that share a key inside the batch first, so each row is written
        once per batch however many of its events the batch holds.
        """
        await self._repository.save(fold(envelopes))

    async def apply_imported(self, envelopes: Sequence[Envelope], folded: Facts) -> int:
        """`apply` for events of an import, `folded` their facts: only those no import stored
        before, recorded as imported in the same transaction. How many were new."""
        async with self._repository.import_batch() as batch:
            new = await batch.new([envelope.event_id for envelope in envelopes])
            if len(new) < len({envelope.event_id for envelope in envelopes}):
                folded = fold(e for e in envelopes if e.event_id in new)
            await batch.save(folded)
        return len(new)
