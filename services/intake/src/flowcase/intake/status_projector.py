"""The status adapter: intake's own requests and the workflow and case events, folded into the
request status read model (idempotently: a redelivered event changes nothing)."""

from __future__ import annotations

from flowcase.events.codec import decode
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import ConsumerRunner, EventProducer, decoded
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.status_service import StatusService

GROUP_ID = "flowcase-intake-status"


class StatusProjector:
    def __init__(
        self, settings: KafkaSettings, service: StatusService, producer: EventProducer
    ) -> None:
        self._service = service
        self.runner = ConsumerRunner(
            settings,
            group_id=GROUP_ID + settings.topic_suffix,  # isolated copies keep apart
            topics=[
                settings.topic(Topic.INTAKE_REQUESTS),
                settings.topic(Topic.WORKFLOW_EVENTS),
                settings.topic(Topic.CASE_EVENTS),
            ],
            handler=decoded(self._handle),
            batch_handler=self._handle_batch,
            deadletter=producer,
        )

    async def run(self) -> None:
        await self.runner.run()

    def stop(self) -> None:
        self.runner.stop()

    async def _handle_batch(self, records: list[Record]) -> None:
        # An undecodable record fails the batch; the runner then goes record by record and
        # dead-letters that one alone.
        await self._service.project([decode(r.value or b"") for r in records])

    async def _handle(self, envelope: Envelope, record: Record) -> None:
        await self._service.project([envelope])
