"""The idempotent producer of catalogued events."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from flowcase.events.codec import encode
from flowcase.events.envelope import Envelope
from flowcase.events.kafka.metrics import MESSAGES_PUBLISHED
from flowcase.events.settings import KafkaSettings
from flowcase.events.tracing import Headers, inject_trace_context, with_request_id

_tracer = trace.get_tracer("flowcase.events")

EVENT_TYPE_HEADER = "flowcase.event_type"
CARRIED_TYPES_HEADER = "flowcase.event_types"
"""The types of the events a group carries (`EventPayload.carried_types`), comma-separated."""


class EventProducer:
    """acks=all and enable_idempotence: a retried send is stored once, in order per partition.

    Messages are keyed by the payload's entity id so one entity's events stay on one partition.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        client_id: str,
        **overrides: Any,
    ) -> None:
        options: dict[str, Any] = {
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            # aiokafka sends one produce request per broker at a time, with one batch per
            # partition of at most this many bytes: at its default (16 KiB, four messages of a
            # routine request's turns) a relay publishing a backlog is bound by round trips.
            "max_batch_size": 256 * 1024,
            "client_id": client_id,
            **settings.client_options(),
            **overrides,
        }
        self._producer = AIOKafkaProducer(**options)
        self._settings = settings

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def topic_for(self, envelope: Envelope) -> str:
        return self._settings.topic(envelope.topic)

    async def publish(self, envelope: Envelope) -> RecordMetadata:
        """Send one event and wait until the broker acknowledged it (acks=all)."""
        return (await self.publish_all([envelope]))[0]

    async def publish_all(
        self,
        envelopes: Sequence[Envelope],
        *,
        parents: Sequence[Context | None] | None = None,
    ) -> list[RecordMetadata]:
        """Send events as one batch; returns when every one is acknowledged, in input order.

        Each `send` span is a child of the current context, or of the envelope's entry in
        `parents` when one is given (the relay: the context its event was stored under).
        """
        sent: list[tuple[trace.Span, asyncio.Future[RecordMetadata]]] = []
        for index, envelope in enumerate(envelopes):
            topic = self.topic_for(envelope)
            carried = envelope.payload.carried_types()
            # The span stays open until the broker's acknowledgement, which is what it measures.
            span = _tracer.start_span(
                f"send {topic}",
                context=parents[index] if parents else None,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": topic,
                    "messaging.message.id": str(envelope.event_id),
                    "messaging.kafka.message.key": envelope.key.decode(),
                    "flowcase.event_type": envelope.event_type,
                    **({"flowcase.event_types": carried} if carried else {}),
                    **(
                        {"flowcase.request_id": str(envelope.request_id)}
                        if envelope.request_id
                        else {}
                    ),
                },
            )
            headers: Headers = [(EVENT_TYPE_HEADER, envelope.event_type.encode())]
            if carried:
                headers.append((CARRIED_TYPES_HEADER, ",".join(carried).encode()))
            context = trace.set_span_in_context(span, parents[index] if parents else None)
            if envelope.request_id:
                context = with_request_id(envelope.request_id, context)
            inject_trace_context(headers, context)
            try:
                future = await self._producer.send(
                    topic, encode(envelope), key=envelope.key, headers=headers
                )
            except BaseException as exc:
                _end_failed(span, exc)
                for earlier, _ in sent:
                    _end_failed(earlier, exc)
                raise
            sent.append((span, future))
        results = await asyncio.gather(*(future for _, future in sent), return_exceptions=True)
        failure: BaseException | None = None
        for (span, _), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException):
                _end_failed(span, result)
                failure = failure or result
                continue
            span.set_attribute("messaging.destination.partition.id", str(result.partition))
            span.set_attribute("messaging.kafka.offset", result.offset)
            span.end()
            MESSAGES_PUBLISHED.labels(result.topic).inc()
        if failure is not None:
            raise failure
        return [r for r in results if isinstance(r, RecordMetadata)]

    async def send_raw(
        self, topic: str, value: bytes | None, *, key: bytes | None, headers: Headers
    ) -> RecordMetadata:
        """Send bytes as they are (dead-letter records, raw submissions)."""
        return await self._producer.send_and_wait(topic, value, key=key, headers=headers)


def _end_failed(span: trace.Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
    span.end()
