"""The Kafka adapter that opens cases: `workflow.EscalatedToCase` from `flowcase.workflow.events`.

Consumer group `case`. Each escalation opens the case of its request together with the tracking
record of the message, in one transaction: a redelivered message changes nothing, and the
same escalation published again (at another offset) names the same case id, which the store
refuses to open twice. Every other workflow event (about 19 in 20) is passed over by its
event-type header, never decoded.
"""

from __future__ import annotations

import logging

from flowcase.case.case_service import CaseService
from flowcase.events.catalogue.workflow import EscalatedToCase
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import ConsumerRunner, EventProducer, decoded
from flowcase.events.kafka.consumer import Record
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.eventstore import tracking_of

log = logging.getLogger(__name__)

GROUP_ID = "case"


class EscalationsConsumer:
    def __init__(
        self, settings: KafkaSettings, service: CaseService, deadletter: EventProducer
    ) -> None:
        self._service = service
        self._runner = ConsumerRunner(
            settings,
            group_id=GROUP_ID,
            topics=[settings.topic(Topic.WORKFLOW_EVENTS)],
            handler=decoded(self.handle),
            deadletter=deadletter,
            handles=[EscalatedToCase.event_type],
        )

    async def handle(self, envelope: Envelope, record: Record) -> None:
        if not isinstance(envelope.payload, EscalatedToCase):
            return
        case_id = await self._service.open_from_escalation(envelope.payload, tracking_of(record))
        log.info("escalation of request %s is case %s", envelope.request_id, case_id)

    async def run(self) -> None:
        await self._runner.run()

    def stop(self) -> None:
        self._runner.stop()
