"""The Flowcase event contract shared by every service."""

from flowcase.events.catalogue import REGISTRY, EventPayload, Outcome, Priority, Reason
from flowcase.events.codec import (
    EventDecodeError,
    MalformedEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    decode,
    decode_all,
    encode,
    expand,
)
from flowcase.events.envelope import Envelope
from flowcase.events.topics import TOPIC_SPECS, Topic, TopicSpec

__all__ = [
    "REGISTRY",
    "TOPIC_SPECS",
    "Envelope",
    "EventDecodeError",
    "EventPayload",
    "MalformedEvent",
    "Outcome",
    "Priority",
    "Reason",
    "Topic",
    "TopicSpec",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "decode",
    "decode_all",
    "encode",
    "expand",
]
