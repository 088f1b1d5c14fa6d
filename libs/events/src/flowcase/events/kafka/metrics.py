"""Prometheus series of the Kafka adapters (names and units per Prometheus conventions)."""

from prometheus_client import Counter, Gauge

MESSAGES_PUBLISHED = Counter(
    "flowcase_messages_published_total", "Events acknowledged by the broker.", ["topic"]
)
MESSAGES_PROCESSED = Counter(
    "flowcase_messages_processed_total",
    "Messages a consumer group handled successfully.",
    ["topic", "group"],
)
MESSAGES_PASSED_OVER = Counter(
    "flowcase_messages_passed_over_total",
    "Messages a consumer group passed over undecoded: their event-type header names a type it "
    "does not handle.",
    ["topic", "group"],
)
MESSAGES_DEADLETTERED = Counter(
    "flowcase_messages_deadlettered_total",
    "Messages a consumer group sent to the dead-letter topic.",
    ["topic", "group", "reason"],
)
CONSUMER_LAG = Gauge(
    "flowcase_consumer_lag_messages",
    "Messages on a partition not yet processed by the group (high watermark minus position).",
    ["topic", "partition", "group"],
)
