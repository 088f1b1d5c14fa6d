"""The event catalogue: every payload model, registered by event type in `REGISTRY`."""

from flowcase.events.catalogue import case, intake, workflow
from flowcase.events.catalogue.base import REGISTRY, EventPayload, UtcDatetime, catalogued
from flowcase.events.catalogue.common import Outcome, Priority, Reason

__all__ = [
    "REGISTRY",
    "EventPayload",
    "Outcome",
    "Priority",
    "Reason",
    "UtcDatetime",
    "case",
    "catalogued",
    "intake",
    "workflow",
]
