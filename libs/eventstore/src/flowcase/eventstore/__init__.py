"""Event-sourced services on PostgreSQL, publishing through a relay (never a dual write)."""

from flowcase.eventstore.dead_letters import DeadLetterTopic
from flowcase.eventstore.follower import DeadLetters, LogFollower
from flowcase.eventstore.persistence import postgres_env
from flowcase.eventstore.relay import Relay, stable_event_id
from flowcase.eventstore.tracking import TrackedApplication, tracking_of

__all__ = [
    "DeadLetterTopic",
    "DeadLetters",
    "LogFollower",
    "Relay",
    "TrackedApplication",
    "postgres_env",
    "stable_event_id",
    "tracking_of",
]
