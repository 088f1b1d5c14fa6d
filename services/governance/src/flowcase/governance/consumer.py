"""The Kafka adapter of the projection: every platform topic, consumer group `governance`.

Each partition's fetched records are folded and stored in one transaction. When a batch fails
for a reason that is not transient (an undecodable record, say), the runner replays it one
record at a time through the same projection and dead-letters the culprit; the upserts make
the records of that batch already stored harmless to store again.
"""

from __future__ import annotations

import time

from flowcase.events import Envelope, Topic, decode_all
from flowcase.events.kafka import ConsumerRunner, EventProducer, decoded
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.governance.projection import Projection
from flowcase.governance.prometheus import PROJECTION_LAG

# Every topic that carries envelopes; raw submissions and dead letters are not events yet.
TOPICS = (
    Topic.INTAKE_REQUESTS,
    Topic.INTAKE_REJECTED,
    Topic.WORKFLOW_DEFINITIONS,
    Topic.WORKFLOW_EVENTS,
    Topic.CASE_EVENTS,
)


class ProjectionConsumer:
    """A worker for `flowcase.runtime.serve`: `run()` until `stop()`."""

    def __init__(
        self,
        settings: KafkaSettings,
        projection: Projection,
        *,
        group_id: str = "governance",
        batch_size: int = 1000,
    ) -> None:
        self._projection = projection
        self._lag = PROJECTION_LAG.labels(group_id)
        self._producer = EventProducer(settings, client_id=f"{group_id}-deadletter")
        self.runner = ConsumerRunner(
            settings,
            group_id=group_id,
            topics=[settings.topic(t) for t in TOPICS],
            handler=decoded(self._one),
            batch_handler=self._batch,
            deadletter=self._producer,
            batch_size=batch_size,
        )

    async def run(self) -> None:
        await self._producer.start()
        try:
            await self.runner.run()
        finally:
            await self._producer.stop()

    def stop(self) -> None:
        self.runner.stop()

    async def close(self) -> None:
        """Close the dead-letter producer, made with the consumer, when `run` never ran (an
        assembly serving only its API): else it is left unclosed, and warned about."""
        await self._producer.stop()

    async def _batch(self, records: list[Record]) -> None:
        await self._projection.apply([e for r in records for e in decode_all(r.value or b"")])
        self._projected(records[-1])

    async def _one(self, envelope: Envelope, record: Record) -> None:
        await self._projection.apply([envelope])
        self._projected(record)

    def _projected(self, newest: Record) -> None:
        # The broker's timestamp of the newest record stored: how far behind the log we are.
        self._lag.set(max(0.0, time.time() - newest.timestamp / 1000))
