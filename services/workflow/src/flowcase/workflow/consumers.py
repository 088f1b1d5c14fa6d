"""The Kafka consumer of the workflow service (an adapter): intake requests start instances,
case resolutions close them.

One consumer group (`workflow`) reads both topics. Each message is applied with its tracking
record (topic, partition, offset) in the same transaction as the events it causes, and a
message already tracked is skipped, so a redelivery changes nothing; the same request
published twice finds its instance by the request's deterministic instance id.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    ConnectionUnavailableError,
    InterfaceError,
    OperationalError,
)

from flowcase.events.catalogue.case import CaseResolved
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import ConsumerRunner, EventProducer, PoisonMessage, decoded
from flowcase.events.kafka.consumer import Handler, Record, is_transient
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.eventstore import tracking_of
from flowcase.workflow.service import WorkflowService


def message_handler(service: WorkflowService, case_events_topic: str) -> Handler:
    async def handle(envelope: Envelope, record: Record) -> None:
        tracking = tracking_of(record)
        if await service.consumed(tracking):
            return
        match envelope.payload:
            case RequestSubmitted():
                await service.start_request(envelope.payload, tracking)
            case CaseResolved():
                await service.close_by_case(envelope.payload, tracking)
            case _ if record.topic == case_events_topic:
                pass  # the rest of a case's life is the case service's business
            case _:
                raise PoisonMessage(
                    f"{envelope.event_type} does not belong on {record.topic}",
                    reason="unexpected_event_type",
                )

    return decoded(handle)


def store_or_broker_away(exc: BaseException) -> bool:
    """Failures of the infrastructure, retried for as long as they last: the runner's own list
    plus the event store's (psycopg's errors, as the eventsourcing library re-raises them), so
    a PostgreSQL outage never sends intake requests to the dead-letter topic."""
    return is_transient(exc) or isinstance(
        exc, OperationalError | InterfaceError | ConnectionUnavailableError
    )


def workflow_consumer(
    settings: KafkaSettings, service: WorkflowService, deadletter: EventProducer, group_id: str
) -> ConsumerRunner:
    case_events = settings.topic(Topic.CASE_EVENTS)
    return ConsumerRunner(
        settings,
        group_id=group_id,
        topics=[settings.topic(Topic.INTAKE_REQUESTS), case_events],
        handler=message_handler(service, case_events),
        deadletter=deadletter,
        transient=store_or_broker_away,
    )
