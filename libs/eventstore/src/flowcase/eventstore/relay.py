"""The relay: what an event-sourced application stored, published to Kafka in store order.

Events are appended to the store first (the `eventsourcing` notification log); the relay reads
the log after its last published position, publishes the mapped envelopes (acks=all), then
records the new position. A crash between publish and record re-publishes the same events with
the same ids (`stable_event_id`), which consumers deduplicate. Nothing is lost: the position only
moves past events the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.application import Application

from flowcase.events.envelope import Envelope
from flowcase.events.kafka.producer import EventProducer
from flowcase.eventstore.metrics import RELAY_BACKLOG

log = logging.getLogger(__name__)

_EVENT_ID_NAMESPACE = UUID("5b0f9c8e-2f6d-4c1a-9e0b-7d3a1c2b4e5f")

ToEnvelopes = Callable[[Any], Sequence[Envelope]]


def stable_event_id(originator_id: UUID, originator_version: int) -> UUID:
    """The envelope id of a stored event: the same on every re-publish."""
    return uuid.uuid5(_EVENT_ID_NAMESPACE, f"{originator_id}/{originator_version}")


class Relay:
    def __init__(
        self,
        *,
        name: str,
        application: Application[Any],
        to_envelopes: ToEnvelopes,
        producer: EventProducer,
        pool: asyncpg.Pool,
        batch_size: int = 500,
        idle_wait: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self._app = application
        self._to_envelopes = to_envelopes
        self._producer = producer
        self._pool = pool
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self.position = 0

    @staticmethod
    async def create_table(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS flowcase_relay_position "
            "(relay text PRIMARY KEY, position bigint NOT NULL)"
        )

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def backlog(self) -> int:
        """Events stored but not yet published."""
        last = await asyncio.to_thread(self._app.recorder.max_notification_id)
        return max((last or 0) - self.position, 0)

    async def resume(self) -> None:
        """Load the last published position (creating the position table on first use)."""
        async with self._pool.acquire() as conn:
            await self.create_table(conn)
            stored = await conn.fetchval(
                "SELECT position FROM flowcase_relay_position WHERE relay = $1", self.name
            )
        self.position = stored or 0

    async def run(self) -> None:
        await self.resume()
        # The store NOTIFYs its channel on every append: listening wakes the relay at once.
        channel = self._app.recorder.channel_name  # type: ignore[attr-defined]
        listening = await self._pool.acquire()
        await listening.add_listener(channel, self._on_notify)
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    published = await self.publish_next_batch()
                    failures = 0
                except Exception as exc:
                    # Kafka or PostgreSQL away: keep the position, try again, never give up.
                    failures += 1
                    delay = min(0.1 * 2**failures, self._max_backoff)
                    log.warning("relay %s failed, retrying in %.1fs: %r", self.name, delay, exc)
                    await asyncio.sleep(delay)
                    continue
                if published == 0:
                    self._wake.clear()
                    # The timeout covers a notification lost while the listener reconnected.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            await listening.remove_listener(channel, self._on_notify)
            await self._pool.release(listening)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def publish_next_batch(self) -> int:
        notifications = await asyncio.to_thread(
            self._app.recorder.select_notifications,
            self.position,
            self._batch_size,
            inclusive_of_start=False,
        )
        if not notifications:
            return 0
        envelopes = [
            envelope
            for notification in notifications
            for envelope in self._to_envelopes(self._app.mapper.to_domain_event(notification))
        ]
        if envelopes:
            await self._producer.publish_all(envelopes)
        position = notifications[-1].id
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO flowcase_relay_position (relay, position) VALUES ($1, $2) "
                "ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position",
                self.name,
                position,
            )
        self.position = position
        RELAY_BACKLOG.labels(self.name).set(await self.backlog())
        return len(notifications)
