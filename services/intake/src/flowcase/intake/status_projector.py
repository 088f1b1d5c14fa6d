"""The status adapter: intake's own requests and the workflow and case events, folded into the
request status read model (idempotently: a redelivered event changes nothing); and the requests
the workflow dead-letters, which can never finish, marked rejected with its reason."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flowcase.events.codec import EventDecodeError, decode, decode_all
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import ConsumerRunner, EventProducer, decoded
from flowcase.events.kafka.consumer import DeadLetterHeader, Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.intake.status import DeadLetter
from flowcase.intake.status_service import StatusService

GROUP_ID = "flowcase-intake-status"

log = logging.getLogger(__name__)


class StatusProjector:
    def __init__(
        self,
        settings: KafkaSettings,
        service: StatusService,
        producer: EventProducer,
        *,
        workflow_group: str,
    ) -> None:
        self._service = service
        self._requests_topic = settings.topic(Topic.INTAKE_REQUESTS)
        self._deadletter_topic = settings.topic(Topic.DEADLETTER)
        self._workflow_group = workflow_group
        self._decoded = decoded(self._handle)
        self.runner = ConsumerRunner(
            settings,
            group_id=GROUP_ID + settings.topic_suffix,  # isolated copies keep apart
            topics=[
                self._requests_topic,
                settings.topic(Topic.WORKFLOW_EVENTS),
                settings.topic(Topic.CASE_EVENTS),
                self._deadletter_topic,
            ],
            handler=self._handle_record,
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
        if records[0].topic == self._deadletter_topic:
            await self._project_dead_letters(records)
            return
        await self._service.project([e for r in records for e in decode_all(r.value or b"")])

    async def _handle_record(self, record: Record) -> None:
        if record.topic == self._deadletter_topic:
            await self._project_dead_letters([record])
            return
        await self._decoded(record)

    async def _handle(self, envelope: Envelope, _: Record) -> None:
        await self._service.project([envelope])

    async def _project_dead_letters(self, records: list[Record]) -> None:
        # Whatever a dead letter holds, reading it never fails: a failure would dead-letter it
        # again, onto the topic this reads.
        await self._service.project([d for r in records if (d := self._dead_letter(r)) is not None])

    def _dead_letter(self, record: Record) -> DeadLetter | None:
        """The request the workflow dead-lettered, when the record is one; None for every other
        dead letter (other topics, other consumers, bytes that are no envelope)."""
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers or ()}
        if (
            headers.get(DeadLetterHeader.ORIGINAL_TOPIC) != self._requests_topic
            or headers.get(DeadLetterHeader.CONSUMER_GROUP) != self._workflow_group
        ):
            return None
        try:
            envelope = decode(record.value or b"")
            failed_at = datetime.fromisoformat(headers[DeadLetterHeader.FAILED_AT])
        except (EventDecodeError, KeyError, ValueError) as exc:
            log.info("dead letter at %d names no request: %r", record.offset, exc)
            return None
        return DeadLetter(
            envelope=envelope,
            reason=headers.get(DeadLetterHeader.REASON, "unknown"),
            error=headers.get(DeadLetterHeader.ERROR, ""),
            failed_at=failed_at if failed_at.tzinfo else failed_at.replace(tzinfo=UTC),
        )
