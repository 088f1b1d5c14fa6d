"""The raw-topic adapter: each record on `flowcase.intake.submissions` becomes an accepted
request or a rejection record. It starts only once the request types are loaded, so a restart
does not reject everything as an unknown type."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka.errors import MessageSizeTooLargeError

from flowcase.events.kafka import ConsumerRunner, EventProducer, PoisonMessage
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.submission_service import RawRecord, SubmissionService

GROUP_ID = "flowcase-intake-submissions"


class SubmissionsConsumer:
    def __init__(
        self,
        settings: KafkaSettings,
        service: SubmissionService,
        producer: EventProducer,
        *,
        request_types_loaded: asyncio.Event,
    ) -> None:
        self._service = service
        self._loaded = request_types_loaded
        self._stopping = asyncio.Event()
        self.runner = ConsumerRunner(
            settings,
            group_id=GROUP_ID + settings.topic_suffix,  # isolated copies keep apart
            topics=[settings.topic(Topic.INTAKE_SUBMISSIONS)],
            handler=self._handle,
            batch_handler=self._handle_batch,
            deadletter=producer,
        )

    async def run(self) -> None:
        loaded = asyncio.ensure_future(self._loaded.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({loaded, stopping}, return_when=asyncio.FIRST_COMPLETED)
        loaded.cancel()
        stopping.cancel()
        if not self._stopping.is_set():
            await self.runner.run()

    def stop(self) -> None:
        self._stopping.set()
        self.runner.stop()

    async def _handle_batch(self, records: list[Record]) -> None:
        await self._service.handle_raw([_raw(r) for r in records])

    async def _handle(self, record: Record) -> None:
        """One record alone: when its batch failed other than transiently."""
        try:
            await self._service.handle_raw([_raw(record)])
        except MessageSizeTooLargeError as exc:
            # The rejection, which carries the original bytes, is too large for Kafka: the
            # record itself goes to the dead-letter topic with the reason.
            raise PoisonMessage(
                f"the rejection of this {len(record.value or b'')}-byte submission exceeds "
                f"the producer's message size limit: {exc}",
                reason="rejection-too-large",
            ) from exc


def _raw(record: Record) -> RawRecord:
    return RawRecord(
        data=record.value or b"",
        position=f"{record.topic}:{record.partition}:{record.offset}",
        received_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
    )
