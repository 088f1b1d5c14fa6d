"""The relay: what an event-sourced application stored, published to Kafka in store order.

Events are appended to the store first (the `eventsourcing` notification log); the relay, a
`LogFollower`, reads the log after its last published position, publishes the mapped envelopes
(acks=all), then records the new position. A crash between publish and record re-publishes the
same events with the same ids (`stable_event_id`), which consumers deduplicate. Nothing is lost:
the position only moves past events the broker acknowledged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from opentelemetry.context import Context

from flowcase.events.envelope import Envelope
from flowcase.events.kafka.producer import EventProducer
from flowcase.eventstore.follower import LogFollower
from flowcase.eventstore.metrics import RELAY_BACKLOG
from flowcase.eventstore.trace_context import TracingMapper

_EVENT_ID_NAMESPACE = UUID("5b0f9c8e-2f6d-4c1a-9e0b-7d3a1c2b4e5f")

ToEnvelopes = Callable[[Any], Sequence[Envelope]]


def stable_event_id(originator_id: UUID, originator_version: int, index: int = 0) -> UUID:
    """The envelope id of a stored event, or of the `index`th event a stored record holds: the
    same on every re-publish. The first keeps the id a record of one event always had."""
    name = f"{originator_id}/{originator_version}" + (f"/{index}" if index else "")
    return uuid.uuid5(_EVENT_ID_NAMESPACE, name)


class Relay(LogFollower):
    def __init__(
        self,
        *,
        name: str,
        application: Application[Any],
        to_envelopes: ToEnvelopes,
        producer: EventProducer,
        pool: asyncpg.Pool,
        batch_size: int = 500,
    ) -> None:
        super().__init__(name=name, application=application, pool=pool, batch_size=batch_size)
        self._to_envelopes = to_envelopes
        self._producer = producer

    async def handle_notifications(
        self, conn: asyncpg.Connection, notifications: Sequence[Notification]
    ) -> None:
        envelopes: list[Envelope] = []
        parents: list[Context | None] = []
        for notification in notifications:
            event, stored_under = self._traced(notification)
            for envelope in self._to_envelopes(event):
                envelopes.append(envelope)
                parents.append(stored_under)
        if envelopes:
            # Each send span continues the trace of the work that stored its event; the
            # events are acknowledged by the broker before the position moves past them.
            await self._producer.publish_all(envelopes, parents=parents)

    def _traced(self, notification: Notification) -> tuple[Any, Context | None]:
        mapper = self._app.mapper
        if isinstance(mapper, TracingMapper):
            return mapper.to_traced_domain_event(notification)
        return mapper.to_domain_event(notification), None

    async def process_next_batch(self) -> int:
        handled = await super().process_next_batch()
        # A batch short of the limit read every event stored when it began: nothing was left
        # behind then, and asking the store (two queries a batch) would say so too.
        behind = await self.backlog() if handled >= self._batch_size else 0
        RELAY_BACKLOG.labels(self.name).set(behind)
        return handled
