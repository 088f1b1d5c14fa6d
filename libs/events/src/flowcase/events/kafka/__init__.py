"""Thin aiokafka adapters: the idempotent producer, the consumer runner, topic administration,
reading a topic from its start."""

from flowcase.events.kafka.admin import ensure_topics
from flowcase.events.kafka.consumer import (
    ConsumerRunner,
    DeadLetterHeader,
    PoisonMessage,
    decoded,
    is_transient,
    message_span,
    stop_on_signals,
)
from flowcase.events.kafka.producer import EventProducer
from flowcase.events.kafka.reading import partitions_of, seek_to_start

__all__ = [
    "ConsumerRunner",
    "DeadLetterHeader",
    "EventProducer",
    "PoisonMessage",
    "decoded",
    "ensure_topics",
    "is_transient",
    "message_span",
    "partitions_of",
    "seek_to_start",
    "stop_on_signals",
]
