"""Following an event-sourced application's notification log, batch by batch.

The relay (to Kafka) and a service's read-model projections are all followers: each reads the
stored events after its recorded position, handles them, and records the new position. The
position row lives in the service's database and is locked for the whole batch, so replicas of
a service (or a rebuild beside it) never interleave and never move a position backwards; a
follower that writes to that database commits its rows and its position in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

log = logging.getLogger(__name__)


class LogFollower:
    def __init__(
        self,
        *,
        name: str,
        application: Application[Any],
        pool: asyncpg.Pool,
        batch_size: int = 500,
        idle_wait: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        self.name = name
        self._app = application
        self._pool = pool
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._table_ready = False
        self.caught_up = asyncio.Event()
        """Set once the follower has handled the whole log as it was when it started."""

    async def handle(self, conn: asyncpg.Connection, events: Sequence[Any]) -> None:
        """Handle one batch of stored domain events, inside the batch's transaction."""
        raise NotImplementedError

    async def handle_notifications(
        self, conn: asyncpg.Connection, notifications: Sequence[Notification]
    ) -> None:
        """Handle one batch as stored; a follower that needs more than the domain events (the
        relay: their trace context) overrides this instead of `handle`."""
        await self.handle(conn, [self._app.mapper.to_domain_event(n) for n in notifications])

    @staticmethod
    async def create_table(conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS flowcase_log_position "
            "(follower text PRIMARY KEY, position bigint NOT NULL)"
        )

    async def _ensure_table(self) -> None:
        if self._table_ready:
            return
        # Sibling followers start at the same moment, and CREATE TABLE IF NOT EXISTS races in
        # PostgreSQL (a unique violation in the catalogue, or worse): one at a time, it cannot.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('flowcase_log_position'))")
            await self.create_table(conn)
        self._table_ready = True

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def position(self) -> int:
        async with self._pool.acquire() as conn:
            stored = await conn.fetchval(
                "SELECT position FROM flowcase_log_position WHERE follower = $1", self.name
            )
        return int(stored or 0)

    async def backlog(self) -> int:
        """Events stored but not yet handled by this follower."""
        last = await asyncio.to_thread(self._app.recorder.max_notification_id)
        return max((last or 0) - await self.position(), 0)

    async def process_next_batch(self) -> int:
        """Handle the stored events after the recorded position; return how many."""
        await self._ensure_table()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO flowcase_log_position (follower, position) VALUES ($1, 0) "
                "ON CONFLICT (follower) DO NOTHING",
                self.name,
            )
            position = await conn.fetchval(
                "SELECT position FROM flowcase_log_position WHERE follower = $1 FOR UPDATE",
                self.name,
            )
            notifications = await asyncio.to_thread(
                self._app.recorder.select_notifications,
                position,
                self._batch_size,
                inclusive_of_start=False,
            )
            if not notifications:
                return 0
            await self.handle_notifications(conn, notifications)
            await conn.execute(
                "UPDATE flowcase_log_position SET position = $2 WHERE follower = $1",
                self.name,
                notifications[-1].id,
            )
        return len(notifications)

    async def catch_up(self) -> int:
        """Handle everything stored so far; return how many events."""
        total = 0
        while handled := await self.process_next_batch():
            total += handled
        return total

    async def rewind(self, conn: asyncpg.Connection) -> None:
        """Back to position 0, in the caller's transaction (a rebuild empties its rows with it).

        The position row's lock waits out a batch in progress elsewhere.
        """
        await conn.execute(
            "INSERT INTO flowcase_log_position (follower, position) VALUES ($1, 0) "
            "ON CONFLICT (follower) DO UPDATE SET position = 0",
            self.name,
        )

    async def run(self) -> None:
        # The store NOTIFYs its channel on every append: listening wakes the follower at once.
        channel = self._app.recorder.channel_name  # type: ignore[attr-defined]
        listening = await self._pool.acquire()
        await listening.add_listener(channel, self._on_notify)
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    handled = await self.process_next_batch()
                    failures = 0
                except Exception as exc:
                    # Kafka or PostgreSQL away: the position did not move; try again, never give up.
                    failures += 1
                    delay = min(0.1 * 2**failures, self._max_backoff)
                    log.warning("%s failed, retrying in %.1fs: %r", self.name, delay, exc)
                    await asyncio.sleep(delay)
                    continue
                if handled == 0:
                    self.caught_up.set()
                    self._wake.clear()
                    # The timeout covers a notification lost while the listener reconnected.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._idle_wait)
        finally:
            await listening.remove_listener(channel, self._on_notify)
            await self._pool.release(listening)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()
