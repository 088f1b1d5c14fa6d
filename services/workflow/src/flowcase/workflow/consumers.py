"""The Kafka consumer of the workflow service (an adapter): intake requests start instances,
case resolutions close them.

One consumer group (`workflow`) reads both topics. The events a message causes commit in the
same transaction as its tracking record (topic, partition, offset), and a message already
tracked is skipped, so a redelivery changes nothing; the same request published twice finds
its instance by the request's deterministic instance id. A fetched batch of requests starts in
one transaction (`batch_handler`); anything out of the ordinary goes one message at a time.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    ConnectionUnavailableError,
    InterfaceError,
    OperationalError,
)
from opentelemetry.context import Context
from opentelemetry.trace import Span, set_span_in_context

from flowcase.events.catalogue.case import CaseResolved
from flowcase.events.catalogue.intake import RequestSubmitted
from flowcase.events.codec import decode
from flowcase.events.envelope import Envelope
from flowcase.events.kafka import (
    ConsumerRunner,
    EventProducer,
    PoisonMessage,
    decoded,
    message_span,
)
from flowcase.events.kafka.consumer import BatchHandler, Handler, Record, is_transient
from flowcase.events.settings import KafkaSettings
from flowcase.events.topics import Topic
from flowcase.events.tracing import REQUEST_ID, with_request_id
from flowcase.eventstore import tracking_of
from flowcase.workflow.service import WorkflowService


def message_handler(service: WorkflowService, case_events_topic: str) -> Handler:
    async def handle(envelope: Envelope, record: Record) -> None:
        await service.room_for_more()
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


def batch_handler(service: WorkflowService, case_events_topic: str, group_id: str) -> BatchHandler:
    """A fetched batch of one partition in one transaction: the requests it carries start
    together, with the tracking record of the last message. Each message keeps its own `process`
    span, under which its instance's events are stored, so every request's trace stays whole.
    Anything unusual (a message that is no request, an undecodable one, a request that has
    started already) raises, and the runner goes message by message through `message_handler`,
    which sorts it out."""
    one_at_a_time = message_handler(service, case_events_topic)

    async def handle(records: list[Record]) -> None:
        if records[0].topic == case_events_topic:
            # Most of a case's life is not ours; the few resolutions close instances one by one.
            for record in records:
                await one_at_a_time(record)
            return
        await service.room_for_more()
        last = await service.last_consumed(tracking_of(records[0]).application_name)
        fresh = [r for r in records if last is None or r.offset > last]
        if not fresh:
            return
        spans = [message_span(record, group_id) for record in fresh]
        try:
            submitted = [
                _submitted(record, span) for record, span in zip(fresh, spans, strict=True)
            ]
            await service.start_requests(submitted, tracking_of(fresh[-1]))
        finally:
            for span in spans:
                span.end()

    return handle


def _submitted(record: Record, span: Span) -> tuple[RequestSubmitted, Context]:
    envelope = decode(record.value or b"")
    if not isinstance(envelope.payload, RequestSubmitted):
        raise PoisonMessage(f"{envelope.event_type} in a batch of requests", reason="not_a_request")
    span.set_attribute(REQUEST_ID, str(envelope.request_id))
    return envelope.payload, with_request_id(envelope.request_id, set_span_in_context(span))


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
        batch_handler=batch_handler(service, case_events, group_id),
        deadletter=deadletter,
        transient=store_or_broker_away,
    )
