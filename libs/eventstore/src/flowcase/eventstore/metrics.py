"""Prometheus series of the event store, its followers and the relay."""

from prometheus_client import Counter, Gauge, Histogram

RELAY_BACKLOG = Gauge(
    "flowcase_relay_backlog_events", "Events stored but not yet published to Kafka.", ["relay"]
)
EVENTSTORE_APPEND_SECONDS = Histogram(
    "flowcase_eventstore_append_seconds",
    "Time to append one unit of work (events and tracking record) to the event store.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
FOLLOWER_SET_ASIDE = Counter(
    "flowcase_follower_set_aside_total",
    "Stored events a log follower could never handle: dead-lettered, then passed.",
    ["follower"],
)
FOLLOWER_RETRYING = Gauge(
    "flowcase_follower_retrying",
    "1 while a log follower's last attempt failed and it is retrying; 0 once it moves again.",
    ["follower"],
)
