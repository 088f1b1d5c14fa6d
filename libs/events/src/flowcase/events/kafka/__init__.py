"""Thin aiokafka adapters: the idempotent producer, the consumer runner, topic administration,
reading a topic from its start to its end."""

from flowcase.events.kafka.admin import ensure_topics
from flowcase.events.kafka.consumer import (
    ConsumerRunner,
    DeadLetterHeader,
    PoisonMessage,
    dead_letter_headers,
    decoded,
    is_transient,
    message_span,
    stop_on_signals,
)
from flowcase.events.kafka.producer import EventProducer
from flowcase.events.kafka.reading import (
    partitions_of,
    read_to_end,
    read_to_end_offsets,
    seek_to_start,
    stop_consumer,
)

__all__ = [
    "ConsumerRunner",
    "DeadLetterHeader",
    "EventProducer",
    "PoisonMessage",
    "dead_letter_headers",
    "decoded",
    "ensure_topics",
    "is_transient",
    "message_span",
    "partitions_of",
    "read_to_end",
    "read_to_end_offsets",
    "seek_to_start",
    "stop_consumer",
    "stop_on_signals",
]
